"""Ingested user events: wire validation (``schemas``), records (``types``) and the durable log
(``log`` and its SQLite / Redis Stream backends)."""
