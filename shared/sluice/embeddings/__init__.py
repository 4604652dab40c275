"""Embedders by name: the offline hashing embedder, the optional MiniLM loader, the registry that
resolves settings names to instances, and the Redis cache of computed vectors."""
