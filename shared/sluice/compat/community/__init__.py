"""Drop-ins for langchain-community's Redis classes (see `sluice.compat`)."""

from sluice.compat.community.cache import RedisCache, RedisSemanticCache
from sluice.compat.community.chat_history import RedisChatMessageHistory
from sluice.compat.community.vectorstore import Redis, RedisVectorStoreRetriever

__all__ = [
    "Redis",
    "RedisCache",
    "RedisChatMessageHistory",
    "RedisSemanticCache",
    "RedisVectorStoreRetriever",
]
