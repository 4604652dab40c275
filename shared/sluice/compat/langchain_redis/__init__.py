"""Drop-ins for langchain-redis's classes (see `sluice.compat`)."""

from sluice.compat.langchain_redis.cache import RedisCache, RedisSemanticCache
from sluice.compat.langchain_redis.chat_history import RedisChatMessageHistory
from sluice.compat.langchain_redis.config import RedisConfig
from sluice.compat.langchain_redis.vectorstore import RedisVectorStore

__all__ = ["RedisCache", "RedisChatMessageHistory", "RedisConfig", "RedisSemanticCache", "RedisVectorStore"]
