"""The recommendation cache.

Public modules: ``tiered`` (the ``RecommendationCache`` protocol and ``TieredCache``),
``local_tier`` (in-process), ``redis_tier`` (shared), ``invalidation`` (a local tier kept
consistent across workers over Redis pub/sub).
"""
