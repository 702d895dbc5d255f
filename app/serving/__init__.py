"""Serving: everything a running API worker does with the published model.

Where a request goes, by sub-package (each ``__init__`` names its public modules):

* ``recommend``: the engine behind ``GET|POST /recommend``: consent, cache, features,
  scoring, rules, fallback (``recommend.engine.RecommendationEngine``), and the model's hot
  reload;
* ``surfaces``: where lists are shown: the experiment variant, exposure and explanation around
  every served list (``surfaces.served_lists``, the entry of ``/recommend``), content blocks,
  similar items, cart complements;
* ``experiments``: A/B strategies (model, popular, diversified, candidate mix) and exposures;
* ``realtime``: ``POST /events``: the append to the event log and the profile update;
* ``catalogue``: the items, their availability overrides and the business rules;
* ``cache``: the in-process and Redis tiers and their cross-worker invalidation;
* ``model``: the published ONNX model loaded and scored with onnxruntime.

``types`` (the records of a list) and ``top_k`` (the cut every list goes through) are shared by
all of them; ``health`` is the readiness check of the whole worker. The app is assembled from
these parts in ``app/bootstrap.py``. Serving never imports training.
"""
