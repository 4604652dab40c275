"""Drop-ins for langchain-community's Redis classes (see `sluice.compat`)."""

from sluice.compat.community.cache import AsyncRedisCache, RedisCache, RedisSemanticCache
from sluice.compat.community.chat_history import RedisChatMessageHistory
from sluice.compat.community.vectorstore import Redis, RedisVectorStoreRetriever

__all__ = [
    "AsyncRedisCache",
    "Redis",
    "RedisCache",
    "RedisChatMessageHistory",
    "RedisSemanticCache",
    "RedisVectorStoreRetriever",
]
