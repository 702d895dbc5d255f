"""Feast feature repository: ``definitions.py`` plus ``feature_store.yaml`` for the Feast CLI."""
