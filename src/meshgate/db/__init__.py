"""Persistence: engines, tables and migrations."""
