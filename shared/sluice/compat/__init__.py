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
"""
