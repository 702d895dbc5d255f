"""Infrastructure helpers shared by every package, depending on no other part of the app:
SQLite files on a thread (``sqlite_file``), Redis keyspace scans (``redis_scan``), a circuit
breaker (``breaker``), the cross-worker invalidation payload (``invalidation_message``), a
bounded LRU memo (``memo``) and cheap random ids (``random_ids``)."""
