"""Persistence: engine and sessions, typed models, named queries, job locks, migrations."""
