"""Named statements about payments: creation, reads, guarded and set-based status
changes, amounts received, history rows, what scan watches.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from ctrip_cli.db.models import (
    BaseUnits,
    DepositAddress,
    DepositIndexCounter,
    Payment,
    PaymentStatusChange,
)
from ctrip_cli.db.queries._sql import (
    _COPY_MIN_ROWS,
    _HISTORY,
    _PAYMENTS,
    _chunks,
    _copy,
    _is_pg,
)
from ctrip_cli.domain.statuses import PaymentStatus

_COUNTER: Table = DepositIndexCounter.__table__  # type: ignore[assignment]
_ADDRESSES: Table = DepositAddress.__table__  # type: ignore[assignment]
# Creation runs at checkout, once per request: Core statements built once, run on the
# session's connection (no unit of work to flush for four rows).
_TAKE_INDEX = (
    update(_COUNTER)
    .where(_COUNTER.c.id == 1)
    .values(next_index=_COUNTER.c.next_index + 1)
    .returning(_COUNTER.c.next_index)
)
_ADD_ADDRESS = insert(_ADDRESSES)
_ADD_PAYMENT = insert(_PAYMENTS)
_ADD_HISTORY = insert(_HISTORY)
_ADDRESS_COLS = ("derivation_index", "address", "created_at")
_HISTORY_ROW = ("payment_id", "from_status", "to_status", "reason", "at")


@cache
def _add_all_pg(payment_cols: tuple[str, ...]) -> Any:
    """The three rows of a new payment in one PostgreSQL statement (one round trip).

    Data-modifying CTEs run in the same statement, and foreign keys are checked at its
    end, when the address and the payment rows exist.
    """
    address = insert(_ADDRESSES).values({c: bindparam(f"a_{c}") for c in _ADDRESS_COLS})
    payment = insert(_PAYMENTS).values({c: bindparam(f"p_{c}") for c in payment_cols})
    history = insert(_HISTORY).values({c: bindparam(f"h_{c}") for c in _HISTORY_ROW})
    return history.add_cte(address.cte("new_address"), payment.cte("new_payment"))


def allocate_deposit_index(session: Session) -> int:
    """Atomically take the next deposit index; the row lock serialises concurrent creates."""
    result = session.connection().execute(_TAKE_INDEX)
    return int(result.scalar_one()) - 1


def add_new_payment(session: Session, row: dict[str, Any], reason: str) -> None:
    """Insert a new payment (every column in `row`), its deposit address and its first
    history row. Core statements: creation tracks no objects, and on PostgreSQL the
    three rows travel in one statement."""
    conn = session.connection()
    address = {c: row[c] for c in _ADDRESS_COLS}
    history = {
        "payment_id": row["id"],
        "from_status": None,
        "to_status": row["status"],
        "reason": reason,
        "at": row["created_at"],
    }
    if conn.dialect.name == "postgresql":
        params = {f"a_{k}": v for k, v in address.items()}
        params.update({f"p_{k}": v for k, v in row.items()})
        params.update({f"h_{k}": v for k, v in history.items()})
        conn.execute(_add_all_pg(tuple(row)), params)
        return
    conn.execute(_ADD_ADDRESS, address)
    conn.execute(_ADD_PAYMENT, row)
    conn.execute(_ADD_HISTORY, history)


def get_payment(session: Session, payment_id: str) -> Payment | None:
    return session.get(Payment, payment_id)


def list_payments(
    session: Session, *, chain: str | None, status: str | None, limit: int
) -> list[Payment]:
    stmt = select(Payment).order_by(Payment.created_at.desc()).limit(limit)
    if chain is not None:
        stmt = stmt.where(Payment.chain == chain)
    if status is not None:
        stmt = stmt.where(Payment.status == status)
    return list(session.scalars(stmt))


def payment_history(session: Session, payment_id: str) -> list[PaymentStatusChange]:
    stmt = (
        select(PaymentStatusChange)
        .where(PaymentStatusChange.payment_id == payment_id)
        .order_by(PaymentStatusChange.id)
    )
    return list(session.scalars(stmt))


def count_payments_by_status(
    session: Session, chain: str | None = None
) -> dict[str, int]:
    stmt = select(Payment.status, func.count()).group_by(Payment.status)
    if chain is not None:
        stmt = stmt.where(Payment.chain == chain)
    return {status: int(n) for status, n in session.execute(stmt).all()}


def _watched(chain: str, statuses: Collection[str], expired_since: datetime) -> Any:
    # Expired payments stay watched for the late window after their deadline, settled
    # ones for the same window after settlement (a customer paying twice).
    return (Payment.chain == chain) & or_(
        Payment.status.in_(list(statuses)),
        (Payment.status == PaymentStatus.EXPIRED)
        & (Payment.expires_at >= expired_since),
        (Payment.status == PaymentStatus.SETTLED)
        & (Payment.settled_at >= expired_since),
    )


def watched_addresses(
    session: Session,
    chain: str,
    *,
    statuses: Collection[str],
    expired_since: datetime,
    native_only: bool = False,
) -> list[tuple[str, str | None]]:
    """(address, token_address) of payments that may still receive funds.

    Not DISTINCT: the caller builds sets anyway, and skipping the server's hash
    aggregate is faster with 100,000 open payments.
    """
    where = _watched(chain, statuses, expired_since)
    if native_only:
        where = where & Payment.token_address.is_(None)
    stmt = select(Payment.address, Payment.token_address).where(where)
    return [(row[0], row[1]) for row in session.execute(stmt)]


def count_watched_token_payments(
    session: Session, chain: str, *, statuses: Collection[str], expired_since: datetime
) -> int:
    where = _watched(chain, statuses, expired_since) & Payment.token_address.is_not(
        None
    )
    return int(
        session.scalar(select(func.count()).select_from(Payment).where(where)) or 0
    )


def oldest_open_created_at(
    session: Session, chain: str, statuses: Collection[str]
) -> datetime | None:
    stmt = select(Payment.created_at).where(
        Payment.chain == chain, Payment.status.in_(list(statuses))
    )
    return session.scalar(stmt.order_by(Payment.created_at).limit(1))


def payments_at(session: Session, chain: str, addresses: Collection[str]) -> list[Any]:
    """(id, address, token_address, asset, status, created_at, expires_at,
    settled_at) of every payment at `addresses`."""
    rows: list[Any] = []
    cols = (
        Payment.id,
        Payment.address,
        Payment.token_address,
        Payment.asset,
        Payment.status,
        Payment.created_at,
        Payment.expires_at,
        Payment.settled_at,
    )
    for part in _chunks(sorted(addresses)):
        stmt = select(*cols).where(Payment.chain == chain, Payment.address.in_(part))
        rows.extend(session.execute(stmt))
    return rows


def lock_payments(session: Session, ids: Collection[str]) -> list[Payment]:
    """Payments FOR UPDATE (PostgreSQL), so confirm and sweep wait for this batch.

    The results are plain attribute holders shaped like Payment, not ORM objects:
    callers change them freely and write set-based statements themselves (building
    1,000 ORM instances cost more than the statements).
    """
    out: list[Payment] = []
    for part in _chunks(sorted(ids)):
        stmt = (
            select(_PAYMENTS).where(_PAYMENTS.c.id.in_(part)).order_by(_PAYMENTS.c.id)
        )
        if _is_pg(session):
            stmt = stmt.with_for_update()
        rows = session.execute(stmt)
        out.extend(cast(Payment, SimpleNamespace(**row._mapping)) for row in rows)
    return out


def set_amounts_received(
    session: Session, amounts: dict[str, int], *, now: datetime
) -> None:
    """Bulk `UPDATE payments SET amount_received`: one statement per chunk.

    PostgreSQL joins two unnested arrays; SQLite (in-process) takes an executemany.
    """
    if not amounts:
        return
    items = sorted(amounts.items())
    if not _is_pg(session):
        many = (
            update(_PAYMENTS)
            .where(_PAYMENTS.c.id == bindparam("pid"))
            .values(amount_received=bindparam("amt", type_=BaseUnits()), updated_at=now)
        )
        session.execute(many, [{"pid": pid, "amt": amt} for pid, amt in items])
        return
    # Two array parameters instead of a VALUES list: nothing to compile per row.
    stmt = text(
        "UPDATE payments SET amount_received = v.amt, updated_at = :now "
        "FROM unnest(CAST(:ids AS text[]), CAST(:amts AS numeric[])) AS v(id, amt) "
        "WHERE payments.id = v.id"
    )
    for part in _chunks(items):
        ids = [pid for pid, _ in part]
        amts = [Decimal(amt) for _, amt in part]
        session.execute(stmt, {"ids": ids, "amts": amts, "now": now})


def set_statuses(
    session: Session,
    ids: Sequence[str],
    *,
    expected: str,
    to: str,
    now: datetime,
    **extra: Any,
) -> set[str]:
    """Guarded bulk `UPDATE ... WHERE status = :expected`; returns the ids it moved."""
    moved: set[str] = set()
    for part in _chunks(list(ids)):
        result = session.execute(
            update(Payment)
            .where(Payment.id.in_(part), Payment.status == expected)
            .values(status=to, updated_at=now, **extra)
            .returning(Payment.id)
            .execution_options(synchronize_session=False)
        )
        moved.update(result.scalars())
    return moved


def set_late(session: Session, ids: Collection[str], *, now: datetime) -> None:
    for part in _chunks(sorted(ids)):
        session.execute(
            update(Payment)
            .where(Payment.id.in_(part))
            .values(late=True, updated_at=now)
            .execution_options(synchronize_session=False)
        )


_HISTORY_COLS = ("payment_id", "from_status", "to_status", "reason", "at")


_COPY_HISTORY = (
    "COPY payment_status_history (" + ", ".join(_HISTORY_COLS) + ") FROM STDIN"
)


def add_status_changes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Rows of payment_id, from_status, to_status, reason, at."""
    if len(rows) >= _COPY_MIN_ROWS and _is_pg(session):
        _copy(session, _COPY_HISTORY, _HISTORY_COLS, rows)
    elif rows:
        session.execute(insert(_HISTORY), list(rows))


def payments_by_status(session: Session, chain: str, status: str) -> list[Payment]:
    stmt = select(Payment).where(Payment.chain == chain, Payment.status == status)
    return list(session.scalars(stmt.order_by(Payment.created_at)))


def overdue_pending(session: Session, chain: str, now: datetime) -> list[Payment]:
    stmt = select(Payment).where(
        Payment.chain == chain,
        Payment.status == PaymentStatus.PENDING,
        Payment.expires_at <= now,
    )
    return list(session.scalars(stmt.order_by(Payment.expires_at)))
