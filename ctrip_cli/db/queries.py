"""Named statements: one function per query, session first, domain values out.

Dialect differences (upserts, row locking) stay in this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ctrip_cli.db.models import (
    DepositAddress,
    DepositIndexCounter,
    JobRun,
    Payment,
    PaymentStatusChange,
    ScanCursor,
    SweepPayment,
    SweepTransaction,
    Transfer,
    UTCDateTime,
    WebhookAttempt,
    WebhookEvent,
)


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


def allocate_deposit_index(session: Session) -> int:
    """Atomically take the next deposit index; the row lock serialises concurrent creates."""
    result = session.execute(
        update(DepositIndexCounter)
        .where(DepositIndexCounter.id == 1)
        .values(next_index=DepositIndexCounter.next_index + 1)
        .returning(DepositIndexCounter.next_index)
    )
    return int(result.scalar_one()) - 1


def add_deposit_address(
    session: Session, index: int, address: str, now: datetime
) -> None:
    session.add(DepositAddress(derivation_index=index, address=address, created_at=now))


def add_payment(session: Session, payment: Payment) -> None:
    session.add(payment)
    session.flush()


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


def payment_transfers(session: Session, payment_id: str) -> list[Transfer]:
    stmt = (
        select(Transfer)
        .where(Transfer.payment_id == payment_id)
        .order_by(Transfer.block_number, Transfer.log_index)
    )
    return list(session.scalars(stmt))


def payment_history(session: Session, payment_id: str) -> list[PaymentStatusChange]:
    stmt = (
        select(PaymentStatusChange)
        .where(PaymentStatusChange.payment_id == payment_id)
        .order_by(PaymentStatusChange.id)
    )
    return list(session.scalars(stmt))


def set_payment_status(
    session: Session,
    payment: Payment,
    *,
    expected: str,
    to: str,
    now: datetime,
    **extra: Any,
) -> bool:
    """Guarded `UPDATE payments SET status = :to WHERE id = :id AND status = :expected`."""
    result = session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status == expected)
        .values(status=to, updated_at=now, **extra)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    for key, value in {"status": to, "updated_at": now, **extra}.items():
        setattr(payment, key, value)
    return True


def add_status_change(
    session: Session,
    payment_id: str,
    frm: str | None,
    to: str,
    *,
    reason: str,
    now: datetime,
) -> None:
    session.add(
        PaymentStatusChange(
            payment_id=payment_id, from_status=frm, to_status=to, reason=reason, at=now
        )
    )


def add_webhook_event(
    session: Session,
    *,
    event_id: str,
    payment_id: str | None,
    event_type: str,
    url: str | None,
    body: str,
    now: datetime,
) -> str:
    session.execute(
        insert(WebhookEvent).values(
            id=event_id,
            payment_id=payment_id,
            type=event_type,
            url=url,
            body=body,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return event_id


def count_payments_by_status(
    session: Session, chain: str | None = None
) -> dict[str, int]:
    stmt = select(Payment.status, func.count()).group_by(Payment.status)
    if chain is not None:
        stmt = stmt.where(Payment.chain == chain)
    return {status: int(n) for status, n in session.execute(stmt).all()}


def count_events_by_status(session: Session) -> dict[str, int]:
    stmt = select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
    return {status: int(n) for status, n in session.execute(stmt).all()}


def get_cursor(session: Session, chain: str) -> ScanCursor | None:
    return session.get(ScanCursor, chain)


def add_job_run(
    session: Session,
    *,
    job: str,
    chain: str,
    started_at: datetime,
    finished_at: datetime,
    outcome: str,
    summary: str | None,
    error: str | None,
) -> None:
    session.add(
        JobRun(
            job=job,
            chain=chain,
            started_at=started_at,
            finished_at=finished_at,
            outcome=outcome,
            summary=summary,
            error=error,
        )
    )


def last_job_runs(session: Session, *, outcome: str) -> dict[tuple[str, str], JobRun]:
    """The latest run with `outcome` for every (job, chain)."""
    latest = (
        select(JobRun.job, JobRun.chain, func.max(JobRun.id).label("id"))
        .where(JobRun.outcome == outcome)
        .group_by(JobRun.job, JobRun.chain)
        .subquery()
    )
    rows = session.scalars(select(JobRun).join(latest, JobRun.id == latest.c.id))
    return {(r.job, r.chain): r for r in rows}


# --- sweep -----------------------------------------------------------------------------

SWEEP_LIVE_STATES = ("held", "signed", "pending", "mined")


def sweep_candidates(session: Session, chain: str) -> list[Payment]:
    """Confirmed (and late expired, funded) payments of `chain` not yet linked to a sweep."""
    linked = select(SweepPayment.payment_id)
    stmt = (
        select(Payment)
        .where(
            Payment.chain == chain,
            or_(
                Payment.status == "confirmed",
                and_(Payment.status == "expired", Payment.late.is_(True)),
            ),
            Payment.id.not_in(linked),
        )
        .order_by(
            Payment.address, Payment.token_address, Payment.created_at, Payment.id
        )
    )
    return list(session.scalars(stmt))


def last_transfer_blocks(
    session: Session, payment_ids: Sequence[str]
) -> dict[str, int]:
    """The block of each payment's latest recorded transfer (payments without any omitted)."""
    if not payment_ids:
        return {}
    stmt = (
        select(Transfer.payment_id, func.max(Transfer.block_number))
        .where(Transfer.payment_id.in_(payment_ids))
        .group_by(Transfer.payment_id)
    )
    return {str(pid): int(block) for pid, block in session.execute(stmt).all()}


def live_sweep_attempts(session: Session, chain: str) -> list[SweepTransaction]:
    """Every attempt of every purpose that still has a live attempt, oldest first."""
    live = select(SweepTransaction.purpose).where(
        SweepTransaction.chain == chain, SweepTransaction.state.in_(SWEEP_LIVE_STATES)
    )
    stmt = (
        select(SweepTransaction)
        .where(SweepTransaction.chain == chain, SweepTransaction.purpose.in_(live))
        .order_by(SweepTransaction.id)
    )
    return list(session.scalars(stmt))


def sweep_purpose_states(session: Session, chain: str, purpose: str) -> set[str]:
    """The states of all attempts of one purpose."""
    stmt = select(SweepTransaction.state).where(
        SweepTransaction.chain == chain, SweepTransaction.purpose == purpose
    )
    return set(session.scalars(stmt))


def max_sweep_nonce(session: Session, chain: str, from_address: str) -> int | None:
    """The highest nonce ctrip ever signed for `from_address` on `chain`."""
    stmt = select(func.max(SweepTransaction.nonce)).where(
        SweepTransaction.chain == chain, SweepTransaction.from_address == from_address
    )
    value = session.execute(stmt).scalar()
    return None if value is None else int(value)


def add_sweep_tx(session: Session, row: SweepTransaction) -> SweepTransaction:
    session.add(row)
    session.flush()
    return row


def get_sweep_tx(session: Session, tx_id: int) -> SweepTransaction | None:
    return session.get(SweepTransaction, tx_id)


def link_sweep_payments(
    session: Session, sweep_tx_id: int, payment_ids: Sequence[str]
) -> None:
    """Link payments to a sweep; the primary key makes a second link impossible."""
    session.execute(
        insert(SweepPayment),
        [{"payment_id": pid, "sweep_tx_id": sweep_tx_id} for pid in payment_ids],
    )


def swept_payments(session: Session, sweep_tx_id: int) -> list[Payment]:
    """The payments a sweep (identified by its first attempt) settles."""
    stmt = (
        select(Payment)
        .join(SweepPayment, SweepPayment.payment_id == Payment.id)
        .where(SweepPayment.sweep_tx_id == sweep_tx_id)
        .order_by(Payment.id)
    )
    return list(session.scalars(stmt))


def count_sweep_txs_by_state(
    session: Session, chain: str | None = None
) -> dict[str, int]:
    stmt = select(SweepTransaction.state, func.count()).group_by(SweepTransaction.state)
    if chain is not None:
        stmt = stmt.where(SweepTransaction.chain == chain)
    return {state: int(n) for state, n in session.execute(stmt).all()}


# --- webhook outbox (deliver-webhooks, webhooks list/retry, status) ---------------


@dataclass(frozen=True, slots=True)
class DueEvent:
    """A claimed outbox event: what a delivery needs, plus its payment's chain."""

    id: str
    type: str
    url: str | None
    body: str
    attempts: int
    attempts_in_round: int
    chain: str | None


def claim_due_events(
    session: Session, *, now: datetime, limit: int, owner: str, lease_until: datetime
) -> list[DueEvent]:
    """Lease up to `limit` due events to `owner`, oldest due first.

    PostgreSQL skips rows another claimer has locked (`FOR UPDATE SKIP LOCKED`);
    SQLite ignores the clause, and its `BEGIN IMMEDIATE` serialises claimers. Commit
    the claim before sending: the lease, not the transaction, protects the event.
    """
    free = or_(WebhookEvent.lease_until.is_(None), WebhookEvent.lease_until < now)
    rows = session.execute(
        select(
            WebhookEvent.id,
            WebhookEvent.type,
            WebhookEvent.url,
            WebhookEvent.body,
            WebhookEvent.attempts,
            WebhookEvent.attempts_in_round,
            Payment.chain,
        )
        .outerjoin(Payment, Payment.id == WebhookEvent.payment_id)
        .where(
            WebhookEvent.status == "pending",
            WebhookEvent.next_attempt_at <= now,
            free,
        )
        .order_by(WebhookEvent.next_attempt_at, WebhookEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookEvent)
    ).all()
    if not rows:
        return []
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_([row.id for row in rows]))
        .values(lease_until=lease_until, lease_owner=owner)
        .execution_options(synchronize_session=False)
    )
    return [DueEvent(*row) for row in rows]


def record_webhook_results(
    session: Session,
    *,
    owner: str,
    attempts: Sequence[dict[str, Any]],
    updates: Sequence[dict[str, Any]],
) -> None:
    """Insert attempt rows and apply each event update while `owner` still holds it.

    An update is an event `id`, optionally `attempted: True` (one more attempt, also
    in the current round), and column values; it also clears the lease. Events with
    identical updates share one statement. An event whose lease was lost (another run
    took it over after it expired) keeps that run's state.
    """
    if attempts:
        session.execute(insert(WebhookAttempt), list(attempts))
    groups: dict[tuple[tuple[str, Any], ...], list[str]] = {}
    for values in updates:
        key = tuple(sorted((k, v) for k, v in values.items() if k != "id"))
        groups.setdefault(key, []).append(values["id"])
    for key, ids in groups.items():
        sets: dict[str, Any] = dict(key) | {"lease_until": None, "lease_owner": None}
        if sets.pop("attempted", False):
            sets["attempts"] = WebhookEvent.attempts + 1
            sets["attempts_in_round"] = WebhookEvent.attempts_in_round + 1
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_(ids), WebhookEvent.lease_owner == owner)
            .values(sets)
            .execution_options(synchronize_session=False)
        )


def _due_at() -> Any:
    # An event leased by a live run is due again only when its lease expires.
    leased = and_(
        WebhookEvent.lease_until.is_not(None),
        WebhookEvent.lease_until > WebhookEvent.next_attempt_at,
    )
    return case((leased, WebhookEvent.lease_until), else_=WebhookEvent.next_attempt_at)


def next_webhook_due_at(session: Session) -> datetime | None:
    """When the earliest pending event becomes claimable (None: nothing pending)."""
    stmt = select(func.min(_due_at(), type_=UTCDateTime())).where(
        WebhookEvent.status == "pending"
    )
    value: datetime | None = session.scalar(stmt)
    return value


def list_webhook_events(
    session: Session, *, status: str | None, limit: int
) -> list[WebhookEvent]:
    """Newest first."""
    stmt = select(WebhookEvent).order_by(
        WebhookEvent.created_at.desc(), WebhookEvent.id
    )
    if status is not None:
        stmt = stmt.where(WebhookEvent.status == status)
    return list(session.scalars(stmt.limit(limit)))


def get_webhook_event(session: Session, event_id: str) -> WebhookEvent | None:
    return session.get(WebhookEvent, event_id)


def webhook_attempts(session: Session, event_id: str) -> list[WebhookAttempt]:
    stmt = select(WebhookAttempt).where(WebhookAttempt.event_id == event_id)
    return list(session.scalars(stmt.order_by(WebhookAttempt.id)))


def requeue_webhook_events(
    session: Session,
    *,
    now: datetime,
    ids: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
) -> list[str]:
    """Make events pending and due now with a fresh retry ladder; history is kept.

    Selects by `ids`, by `statuses`, or both. Returns the ids requeued.
    """
    conditions = []
    if ids is not None:
        conditions.append(WebhookEvent.id.in_(list(ids)))
    if statuses is not None:
        conditions.append(WebhookEvent.status.in_(list(statuses)))
    if not conditions:
        return []
    result = session.execute(
        update(WebhookEvent)
        .where(*conditions)
        .values(status="pending", next_attempt_at=now, attempts_in_round=0)
        .returning(WebhookEvent.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(result.scalars())


def outbox_summary(session: Session, now: datetime) -> dict[str, Any]:
    """The outbox at a glance, for `status`.

    Returns:
        `pending` (depth), `due` (pending and due now), `retrying` (pending after a
        failed attempt), `failed`, `skipped` (no URL configured), `delivered`, and
        `oldest_due_age_s` (seconds the oldest due event has waited; None if none due).
    """
    pending = WebhookEvent.status == "pending"
    due = and_(pending, WebhookEvent.next_attempt_at <= now)
    row = session.execute(
        select(
            func.count().filter(pending),
            func.count().filter(due),
            func.count().filter(and_(pending, WebhookEvent.attempts_in_round > 0)),
            func.count().filter(WebhookEvent.status == "failed"),
            func.count().filter(WebhookEvent.status == "skipped"),
            func.count().filter(WebhookEvent.status == "delivered"),
        )
    ).one()
    oldest: datetime | None = session.scalar(
        select(func.min(WebhookEvent.next_attempt_at, type_=UTCDateTime())).where(due)
    )
    keys = ("pending", "due", "retrying", "failed", "skipped", "delivered")
    summary: dict[str, Any] = {k: int(v or 0) for k, v in zip(keys, row, strict=True)}
    summary["oldest_due_age_s"] = (
        None if oldest is None else max(0, int((now - oldest).total_seconds()))
    )
    return summary
