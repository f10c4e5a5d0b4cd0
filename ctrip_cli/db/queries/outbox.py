"""Named statements of the webhook outbox: writes, claims, results, requeues, summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from ctrip_cli.db.models import (
    Payment,
    UTCDateTime,
    WebhookAttempt,
    WebhookEvent,
)
from ctrip_cli.db.queries._sql import (
    _COPY_MIN_ROWS,
    _EVENTS,
    _copy,
    _is_pg,
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


def count_events_by_status(session: Session) -> dict[str, int]:
    stmt = select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
    return {status: int(n) for status, n in session.execute(stmt).all()}


_EVENT_COLS = (
    "id",
    "payment_id",
    "type",
    "url",
    "body",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)


_COPY_EVENTS = "COPY webhook_events (" + ", ".join(_EVENT_COLS) + ") FROM STDIN"


def add_webhook_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Outbox rows of id, payment_id, type, url, body, status, attempts,
    next_attempt_at, created_at."""
    if len(rows) >= _COPY_MIN_ROWS and _is_pg(session):
        _copy(session, _COPY_EVENTS, _EVENT_COLS, rows)
    elif rows:
        session.execute(insert(_EVENTS), list(rows))


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
