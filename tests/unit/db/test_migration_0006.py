"""Migration 0006 (reconcile): the new columns and tables come and go; a balance
credit survives a downgrade as a transfer (log index -2) and the models and the
migrated schema agree."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.models import Base
from tests.unit.db.test_migration_0004 import _alembic

BEFORE = "0005_sweep_l1_fees"


def test_upgrade_and_downgrade_keep_balance_credits(engine) -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    stamp = at if engine.dialect.name == "postgresql" else at.replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO transfers (chain, tx_hash, log_index, block_number, "
                "block_hash, to_address, amount, created_at, source, from_block) "
                "VALUES ('local', :h, -2, 10, :h, :a, '5', :at, 'balance', 3)"
            ),
            {"h": "0x" + "ab" * 32, "a": "0x" + "12" * 20, "at": stamp},
        )
    _alembic(engine, "downgrade", BEFORE)
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT log_index, amount FROM transfers")).one()
        tables = sa.inspect(conn).get_table_names()
    assert (kept[0], int(kept[1])) == (-2, 5)
    assert "reconcile_differences" not in tables
    db_engine.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
