"""Shared statement helpers: dialect-aware upserts, COPY, IN-list chunks, Core tables."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Table,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ctrip_cli.db.models import (
    Payment,
    PaymentStatusChange,
    ScannedBlock,
    Transfer,
    WebhookEvent,
)

_IN_CHUNK = 5_000  # bound the size of IN (...) lists


# Core tables: bulk inserts skip the ORM's per-row bookkeeping.
_TRANSFERS: Table = Transfer.__table__  # type: ignore[assignment]


_PAYMENTS: Table = Payment.__table__  # type: ignore[assignment]


_HISTORY: Table = PaymentStatusChange.__table__  # type: ignore[assignment]


_EVENTS: Table = WebhookEvent.__table__  # type: ignore[assignment]


_BLOCKS: Table = ScannedBlock.__table__  # type: ignore[assignment]


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_ignore(
    session: Session, model: type[Any], rows: Sequence[dict[str, Any]]
) -> int:
    """INSERT ... ON CONFLICT DO NOTHING; returns how many rows were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(model)
    result = session.execute(stmt.on_conflict_do_nothing(), list(rows))
    return int(getattr(result, "rowcount", 0) or 0)


_COPY_MIN_ROWS = 200


def _copy(
    session: Session,
    statement: str,
    cols: Sequence[str],
    rows: Sequence[dict[str, Any]],
    *,
    lines: Iterable[str] | None = None,
) -> None:
    """COPY `rows` in through the session's own connection (same transaction)."""
    if lines is None:
        lines = ("\t".join(_copy_field(row[c]) for c in cols) + "\n" for row in rows)
    buf = io.StringIO("".join(lines))
    dbapi = session.connection().connection.dbapi_connection
    if dbapi is None:  # pragma: no cover - a live session always has one
        raise RuntimeError("no database connection")
    cur = dbapi.cursor()
    try:
        cur.copy_expert(statement, buf)
    finally:
        cur.close()


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: Any) -> str:
    """One field in COPY's text format."""
    if value.__class__ is str:
        return str(value).translate(_COPY_ESCAPES)
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)
