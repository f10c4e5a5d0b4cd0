"""Chaos campaigns for ctrip: fault injection against a real anvil and PostgreSQL.

Run `python -m scripts.chaos --size small|full`; see scripts/chaos/run.py.
"""
