"""Migration 0005 (sweep L1 fees): existing attempts reserved no L1 fee, a confirmed
sweep's dust is what it reserved beyond what it paid; downgrading drops the columns.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from ctrip_cli.db import engine as db_engine
from tests.unit.db.test_migration_0004 import _alembic, _seed

BEFORE = "0004_sweep_accounting"


def test_upgrade_fills_dust_of_confirmed_sweeps_and_downgrade_drops_the_columns(
    engine,
) -> None:
    _alembic(engine, "downgrade", "0003_webhook_endpoint_text")
    _seed(engine)  # a confirmed native sweep, gas 21,000 at 1 wei
    _alembic(engine, "upgrade", BEFORE)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE sweep_transactions SET fee_paid = 20000"))

    db_engine.upgrade(engine)

    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT l1_fee_reserved, l1_fee_paid, dust FROM sweep_transactions")
        ).one()
    assert (int(row[0]), row[1], int(row[2])) == (0, None, 1_000)

    _alembic(engine, "downgrade", BEFORE)
    with engine.connect() as conn:
        columns = {
            c["name"] for c in sa.inspect(conn).get_columns("sweep_transactions")
        }
    assert not {"l1_fee_reserved", "l1_fee_paid", "dust"} & columns
    db_engine.upgrade(engine)
