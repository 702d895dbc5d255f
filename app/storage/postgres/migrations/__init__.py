"""Alembic's environment and the versioned scripts that make the records' schema."""
