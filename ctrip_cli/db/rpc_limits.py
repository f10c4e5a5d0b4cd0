"""Queries of the learnt RPC endpoint limits (one JSON document per chain and endpoint
key), read when a pass opens a chain and written when it closes it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ctrip_cli.db.models import RpcEndpointLimits


def load(engine: sa.Engine, chain: str) -> dict[str, dict[str, Any]]:
    """{endpoint key: limits document} of `chain`; unreadable documents are skipped."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(RpcEndpointLimits.endpoint_key, RpcEndpointLimits.limits).where(
                RpcEndpointLimits.chain == chain
            )
        ).all()
    out = {}
    for key, text in rows:
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        if isinstance(doc, dict):
            out[key] = doc
    return out


def load_all(engine: sa.Engine) -> dict[str, dict[str, dict[str, Any]]]:
    """{chain: {endpoint key: limits document}}, for `status`."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                RpcEndpointLimits.chain,
                RpcEndpointLimits.endpoint_key,
                RpcEndpointLimits.limits,
            )
        ).all()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for chain, key, text in rows:
        try:
            out.setdefault(chain, {})[key] = json.loads(text)
        except ValueError:
            continue
    return out


def save(
    engine: sa.Engine, chain: str, docs: Mapping[str, dict[str, Any]], now: datetime
) -> None:
    """Upsert the documents (the last pass to learn something wins)."""
    if not docs:
        return
    rows = [
        {"chain": chain, "endpoint_key": k, "limits": json.dumps(d), "updated_at": now}
        for k, d in docs.items()
    ]
    insert: Any = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(RpcEndpointLimits).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["chain", "endpoint_key"],
        set_={"limits": stmt.excluded.limits, "updated_at": stmt.excluded.updated_at},
    )
    with engine.begin() as conn:
        conn.execute(stmt)
