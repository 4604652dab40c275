"""Celery 5 side of the benchmarks; runs in any Python with celery[redis] (never imports sluice)."""
