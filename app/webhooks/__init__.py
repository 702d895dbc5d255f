"""CRM webhooks: engagement and segment-change events POSTed, signed, to configured endpoints.

The request path only enqueues into a durable outbox (``outbox``: SQLite or Redis); the
``worker`` delivers in the background with retries and a dead-letter store. See
``docs/product.md`` (Webhooks) for the receiver's side.
"""
