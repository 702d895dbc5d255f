"""Connections to the storage engines the stores share (PostgreSQL), built from settings."""
