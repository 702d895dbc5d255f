"""Qualitative feedback from users: "not interested" in an item or a category, and relevance
ratings (1-5) of an item or of a served list. Stored by pseudonym (``types.FeedbackStore``) in
SQLite under the home, or in PostgreSQL with ``database_url``; the request path reads a user's
"not interested" entries to leave those items out of the next answers."""
