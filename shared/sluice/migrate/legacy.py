"""Where the peers' data lives in sluice: hashed exact-cache entries, session ids, cache names.

Exact caches whose keys are hashes of the prompt and model: how their entries live on in sluice.

langchain-community's `RedisCache` stores an answer under ``md5(prompt + llm_string)`` and
langchain-redis's under ``<prefix>:md5(prompt):md5(llm_string)``; neither keeps the prompt or
the model, so they cannot become ordinary sluice entries. The migration stores each one as a
sluice entry whose *prompt* is the source's digest and whose *model* is a marker naming the
layout; the drop-in classes of `sluice.compat` compute the same digest on a miss (in the same
round trip as the ordinary lookup). New answers are written in sluice's own form.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

COMMUNITY_MARKER: Final = "sluice.migrated:langchain-community:md5(prompt+llm_string)"
LANGCHAIN_REDIS_MARKER: Final = "sluice.migrated:langchain-redis:md5(prompt):md5(llm_string)"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def community_digest(prompt: str, llm_string: str) -> str:
    """The key langchain-community's `RedisCache` used for this prompt and model."""
    return _md5(prompt + llm_string)


def langchain_redis_digest(prompt: str, llm_string: str) -> str:
    """langchain-redis's `RedisCache` key without its prefix: ``md5(prompt):md5(llm_string)``."""
    return f"{_md5(prompt)}:{_md5(llm_string)}"


# --- names: where each peer's data lives in sluice (the drop-in classes and the migration agree) ---

COMMUNITY_HISTORY_PREFIX: Final = "message_store:"
LANGCHAIN_REDIS_HISTORY_PREFIX: Final = "chat:"
_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def safe_name(text: str, default: str = "migrated") -> str:
    """A sluice cache or index name for a peer's name (``cache:ab12`` -> ``cache_ab12``)."""
    return _BAD.sub("_", text)[:64] or default


def community_session(key: str) -> str:
    """langchain-community's history key ``<key_prefix><session>`` -> the sluice session id:
    the session with the default prefix; the whole key with another one (prefixes keep stores apart)."""
    return key.removeprefix(COMMUNITY_HISTORY_PREFIX)


def langchain_redis_session(key_prefix: str, session_id: str) -> str:
    """langchain-redis's session -> the sluice session id (a non-default prefix is kept in front)."""
    return session_id if key_prefix == LANGCHAIN_REDIS_HISTORY_PREFIX else key_prefix + session_id


def langchain_redis_cache(prefix: str | None) -> str:
    """langchain-redis `RedisCache(prefix=...)` -> the sluice cache name (``redis`` -> ``default``)."""
    return "default" if prefix in (None, "redis") else safe_name(prefix or "")


def redisvl_semantic_cache(name: str | None) -> str:
    """A redisvl semantic cache name (langchain-redis's default ``llmcache``) -> the sluice cache name."""
    return "semantic" if name in (None, "llmcache") else safe_name(name or "")
