"""LangChain models named in settings: the registry that resolves them and an offline fake."""
