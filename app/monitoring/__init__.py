"""Watching the served model in production: online quality by model version (attributed CTR and
conversion of every answer), drift of live traffic from the training snapshot, and the small
in-process time series the console charts. Nothing here sits on the request path beyond an
O(1) hook per answer."""
