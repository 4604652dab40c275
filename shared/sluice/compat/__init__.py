"""Drop-in replacements for LangChain's Redis classes, backed by sluice.

Same class names and constructor signatures as the classes they replace, so switching is the
import line:

- ``from langchain_community.cache import RedisCache, AsyncRedisCache, RedisSemanticCache`` ->
  ``from sluice.compat.community import RedisCache, AsyncRedisCache, RedisSemanticCache``
- ``from langchain_community.vectorstores.redis import Redis`` -> ``from sluice.compat.community import Redis``
- ``from langchain_community.chat_message_histories import RedisChatMessageHistory`` ->
  ``from sluice.compat.community import RedisChatMessageHistory``
- ``from langchain_redis import RedisCache, RedisSemanticCache, RedisVectorStore, RedisConfig,
  RedisChatMessageHistory`` -> ``from sluice.compat.langchain_redis import ...``

Writes go through sluice's workers (run ``sluice worker``), each object reads its own writes,
and data is stored in sluice's formats; ``sluice migrate`` brings the data the old classes
wrote. What callers see is the peers': search results, returned ids and keys, ``store.index``
(langchain-redis), and the peers' filter expressions (`sluice.vectors.foreign_filters`). Each class's docstring lists where it behaves differently on purpose. Every class also
takes ``client=`` (a `sluice.Client`) or ``namespace=``; otherwise objects for the same URL (or
redis-py client) and namespace share one `Client` per process (`sluice.compat.clients`).

Measured against the peers' own tests (issue 18, an outside check; their test code is theirs and
is not in this repository): langchain-redis 0.2.6's integration tests (cache, chat history, ids,
index names, config, vector store hash and JSON; the main-branch files of that release line) and
langchain-community 0.4.2's (cache, memory, vector store; from its sdist): 244 tests.

=============================================  ==========  =================
suite                                          originals   sluice.compat
=============================================  ==========  =================
langchain-redis cache                          8 / 8       8 / 8
langchain-redis chat history                   54 / 54     48 / 54
langchain-redis ids parameter                  3 / 3       0 / 3
langchain-redis index names                    4 / 4       4 / 4
langchain-redis config                         10 / 10     10 / 10
langchain-redis vector store (hash)            56 / 58     54 / 58
langchain-redis vector store (JSON)            55 / 59     54 / 59
langchain-community cache                      12 / 15     12 / 15
langchain-community memory                     1 / 1       1 / 1
langchain-community vector store               32 / 32     30 / 32
total                                          235 / 244   221 / 244
=============================================  ==========  =================

How it runs: Redis 8.2.3 with RediSearch and RedisJSON on the ports the tests hard-code (6379,
and 6020 for langchain-community's cache), a ``sluice worker`` on each, fresh for each run; the
test files once as published, once with only their imports of the peer classes rewritten to
``sluice.compat.community`` / ``sluice.compat.langchain_redis`` (names these modules do not
export, such as the community filter classes, keep their import). The originals run under the
redis-py their releases support (7.4 for langchain-redis, 5.2 for langchain-community): under
this project's redis-py 8 they pass 154 (RESP3 replies and renamed search modules break them).
Five tests fail in both columns: the peers' tests disagreeing with
their releases (keys returned with the prefix where langchain-redis 0.2.6 returns bare ids;
``run=`` in langchain-core's ``LLMResult``). The drop-ins' other 18 failures are differences
their docstrings list: tests that read the peer's keys or search index directly
(``<prefix>:<id>`` hashes and JSON documents, ``idx:chat_history``, ``FT.INFO``; 12), geo
filters (2), ``from_texts(ids=...)`` used rather than dropped (2: ten thousand documents under
one repeated id), metadata typed rather than strings (1) and langchain-redis's key-prefix
conflict warning (no shared index, so no conflict; 1).
"""
