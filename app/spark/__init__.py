"""The Spark engine of the batch stages: the same tables as the single-machine path, computed
by Spark (extra ``spark``). Nothing here is imported unless ``batch_engine`` is ``spark``."""
