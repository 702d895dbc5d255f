"""A/B experiments as serving runs them (definitions, stores and statistics live in
``app.experiments``).

Public modules: ``service`` (``ExperimentService``: assignment, exposures, attribution,
reports), ``strategies`` (``StrategyRecommender``: the list a variant serves);
``diversify`` is the MMR re-rank of the diversified strategy.
"""
