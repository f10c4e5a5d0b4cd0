"""Migration 0004 (sweep accounting): an existing settled payment keeps its one sweep,
now with the amount it took, and `amount_swept` = what it received; downgrading keeps
each payment's first sweep. The models and the migrated schema agree."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.models import Base

BEFORE = "0003_webhook_endpoint_text"


def _alembic(engine: sa.Engine, verb: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(db_engine.MIGRATIONS_DIR))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, revision)
        conn.commit()


def _seed(engine: sa.Engine) -> None:
    pg = engine.dialect.name == "postgresql"
    at = datetime(2026, 11, 1, tzinfo=UTC) if pg else datetime(2026, 11, 1)  # noqa: DTZ001
    meta = sa.MetaData()
    with engine.begin() as conn:
        t = {
            n: sa.Table(n, meta, autoload_with=conn)
            for n in ("deposit_addresses", "payments", "sweep_transactions")
        }
        links = sa.Table("sweep_payments", meta, autoload_with=conn)
        address = "0x" + "12" * 20
        conn.execute(
            t["deposit_addresses"].insert(),
            {"derivation_index": 7, "address": address, "created_at": at},
        )
        conn.execute(
            t["payments"].insert(),
            {
                "id": "pay_m",
                "chain": "local",
                "asset": "ETH",
                "decimals": 18,
                "address": address,
                "derivation_index": 7,
                "amount": "1000",
                "amount_received": "1200",
                "status": "settled",
                "late": False,
                "created_at": at,
                "expires_at": at,
                "updated_at": at,
            },
        )
        conn.execute(
            t["sweep_transactions"].insert(),
            {
                "id": 1,
                "chain": "local",
                "purpose": "sweep:old",
                "kind": "native",
                "key_path": "m/44'/60'/0'/0/7",
                "from_address": address,
                "to_address": "0x" + "34" * 20,
                "amount": "1100",
                "nonce": 0,
                "gas_limit": 21000,
                "max_fee_per_gas": "1",
                "raw_tx": "0x00",
                "tx_hash": "0x" + "56" * 32,
                "state": "confirmed",
                "created_at": at,
                "updated_at": at,
            },
        )
        conn.execute(links.insert(), {"payment_id": "pay_m", "sweep_tx_id": 1})


def test_upgrade_keeps_existing_sweeps_and_downgrade_restores_them(engine) -> None:
    _alembic(engine, "downgrade", BEFORE)
    _seed(engine)

    db_engine.upgrade(engine)
    with engine.connect() as conn:
        swept = conn.execute(sa.text("SELECT amount_swept FROM payments")).scalar()
        link = conn.execute(
            sa.text("SELECT sweep_tx_id, payment_id, amount FROM sweep_payments")
        ).one()
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert int(swept) == 1200
    assert (link[0], link[1], int(link[2])) == (1, "pay_m", 1200)
    assert diff == []

    _alembic(engine, "downgrade", BEFORE)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM sweep_payments")).all()
    assert [tuple(r) for r in rows] == [("pay_m", 1)]
    db_engine.upgrade(engine)
