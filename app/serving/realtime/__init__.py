"""``POST /events`` as it happens: the speed layer of the event log.

Public modules: ``event_ingest`` (``EventIngestor``: validate, consent, append, update profiles,
notify listeners), ``profile_updates`` (the users' histories in the online store, and their
cached lists dropped), ``lag_monitor`` (how far the offline consumer group is behind).
"""
