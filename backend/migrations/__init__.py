"""Alembic schema migrations (`python -m backend.db` shows how they are applied)."""
