"""sluice workers: the job runtime, handlers, CLI and Celery beat."""
