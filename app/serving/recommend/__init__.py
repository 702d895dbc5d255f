"""The request path of ``/recommend``.

Public modules: ``engine`` (``RecommendationEngine``: consent → cache → features → scoring →
rules → fallback), ``model_reload`` (``ModelReloader``: swaps in a newly published model).
The rest (``profiles``, ``coalesce``, ``history_index``, ``fallback``) are the engine's steps.
"""
