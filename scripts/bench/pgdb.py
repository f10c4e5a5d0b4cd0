"""Benchmark databases on the local PostgreSQL: seed a migrated one with many open
payments by bulk insert, clone it from a template (fast), drop it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.models import DepositAddress, Payment

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


def pending_payment(
    i: int,
    *,
    asset: str,
    token: str | None,
    decimals: int,
    address: str,
    amount: int,
    now: datetime,
) -> dict[str, Any]:
    """Row i of `payments`: pending, created 10 minutes ago, due in a day."""
    return {
        "id": f"pay_{i:032d}",
        "chain": "local",
        "asset": asset,
        "token_address": token,
        "decimals": decimals,
        "address": address,
        "derivation_index": i,
        "amount": amount,
        "amount_received": 0,
        "status": "pending",
        "late": False,
        "created_at": now - timedelta(minutes=10),
        "expires_at": now + timedelta(days=1),
        "updated_at": now,
    }


def seed(
    name: str,
    count: int,
    address: Callable[[int], str],
    payment: Callable[[int], dict[str, Any]],
    now: datetime,
) -> None:
    """A migrated database `name` holding `count` deposit addresses and payments."""
    create(name)
    engine = db_engine.make_engine(url(name))
    db_engine.upgrade(engine)
    with engine.begin() as conn:
        for start in range(0, count, 20_000):
            idx = range(start, min(start + 20_000, count))
            rows = [
                {"derivation_index": i, "address": address(i), "created_at": now}
                for i in idx
            ]
            conn.execute(sa.insert(DepositAddress), rows)
            conn.execute(sa.insert(Payment), [payment(i) for i in idx])
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()
