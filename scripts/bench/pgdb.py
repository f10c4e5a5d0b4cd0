"""Benchmark databases on the local PostgreSQL: create a migrated one, clone it from a
template (fast), drop it."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.engine import make_url

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def url(name: str) -> str:
    """The SQLAlchemy URL of database `name` on the admin server."""
    return make_url(PG_ADMIN).set(database=name).render_as_string(False)


def _admin(statement: str) -> None:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(statement))
    admin.dispose()


def create(name: str) -> None:
    """A fresh, empty database `name` (dropped first if it exists)."""
    drop(name)
    _admin(f'CREATE DATABASE "{name}"')


def clone(template: str) -> str:
    """A copy of `template` under a new name, which it returns."""
    name = f"ctrip_bench_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def drop(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
