"""Persistence: models, engine and sessions, repositories and migrations."""
