"""THE payment transition: a guarded, set-based status change that writes its history
rows and outbox events in the caller's transaction, so they commit (or vanish)
together. Also the payment's JSON shape, which every webhook body carries.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ctrip_cli import redact
from ctrip_cli.db import queries
from ctrip_cli.db.models import Payment
from ctrip_cli.domain.statuses import EventType, PaymentStatus
from ctrip_cli.money import format_units

EventFor = EventType | Callable[[Payment], EventType | None] | None
_STAMP = {
    PaymentStatus.DETECTED: "detected_at",
    PaymentStatus.CONFIRMED: "confirmed_at",
    PaymentStatus.SETTLED: "settled_at",
}


def rfc3339(at: datetime | None) -> str | None:
    """`2026-11-29T12:00:00.123456Z`: RFC 3339 in UTC."""
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def threshold(amount: int, tolerance_bps: int) -> int:
    """The least amount that counts as paid, in exact integer math."""
    return amount - amount * tolerance_bps // 10_000


def payment_json(p: Payment) -> dict[str, Any]:
    """The payment as CONTRACT.md shapes it; amounts are strings (exact past 2**53)."""
    swept = int(getattr(p, "amount_swept", 0) or 0)
    return {
        "id": p.id,
        "chain": p.chain,
        "asset": p.asset,
        "token_address": p.token_address,
        "decimals": p.decimals,
        "address": p.address,
        "amount": format_units(p.amount, p.decimals),
        "amount_base_units": str(p.amount),
        "amount_received": format_units(p.amount_received, p.decimals),
        "amount_received_base_units": str(p.amount_received),
        "amount_swept_base_units": str(swept),
        "shortfall_base_units": str(max(p.amount - p.amount_received, 0)),
        "status": p.status,
        "late": bool(p.late),
        "overpaid": p.amount_received > p.amount,
        "reference": p.reference,
        "webhook_url": redact.redact_url(p.webhook_url),
        "created_at": rfc3339(p.created_at),
        "expires_at": rfc3339(p.expires_at),
        "detected_at": rfc3339(p.detected_at),
        "confirmed_at": rfc3339(p.confirmed_at),
        "settled_at": rfc3339(p.settled_at),
    }


def event_row(
    p: Payment, event: EventType, now: datetime, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An outbox row whose body snapshots the payment as it is now.

    `extra` adds top-level keys beside `data` (e.g. `received_base_units` of
    `payment.overpaid`).
    """
    body: dict[str, Any] = {
        "type": str(EventType(event)),
        "timestamp": rfc3339(now),
        "data": payment_json(p),
    }
    body.update(extra or {})
    return {
        "id": new_id("msg"),
        "payment_id": p.id,
        "type": str(event),
        "url": p.webhook_url,
        "body": json.dumps(body, separators=(",", ":")),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def emit(
    session: Session,
    payment: Payment,
    event: EventType,
    *,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> str:
    """Write one outbox event for `payment` (no status change); returns its id."""
    row = event_row(payment, event, now, extra)
    queries.add_webhook_events(session, [row])
    return str(row["id"])


def move(
    session: Session,
    payments: Sequence[Payment],
    to: PaymentStatus,
    *,
    now: datetime,
    reason: str,
    event: EventFor,
    values: dict[str, Any] | None = None,
) -> list[Payment]:
    """Move `payments` to `to`, each only if its status is still the one it was read
    with: one guarded UPDATE per from-status, then their history rows and outbox
    events. `event` is one type, a function of the payment (None: no event), or None.

    The payments passed in are updated in place; returns the ones that moved.
    """
    by_status: dict[str, list[Payment]] = defaultdict(list)
    for p in payments:
        by_status[p.status].append(p)
    moved: list[Payment] = []
    history: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for frm, group in by_status.items():
        sets = _stamps(frm, to, now) | (values or {})
        ids = queries.set_statuses(
            session, [p.id for p in group], expected=frm, to=to, now=now, **sets
        )
        for p in group:
            if p.id not in ids:
                continue
            for key, value in {"status": str(to), "updated_at": now, **sets}.items():
                setattr(p, key, value)
            moved.append(p)
            history.append(
                {
                    "payment_id": p.id,
                    "from_status": frm,
                    "to_status": str(to),
                    "reason": reason,
                    "at": now,
                }
            )
            kind = event(p) if callable(event) else event
            if kind is not None:
                events.append(event_row(p, kind, now))
    queries.add_status_changes(session, history)
    queries.add_webhook_events(session, events)
    return moved


def transition(
    session: Session,
    payment: Payment,
    to: PaymentStatus | str,
    *,
    now: datetime,
    reason: str,
    event: EventType | str | None,
) -> bool:
    """Move one payment (see `move`); False (nothing written) if its status changed."""
    kind = None if event is None else EventType(event)
    moved = move(
        session, [payment], PaymentStatus(to), now=now, reason=reason, event=kind
    )
    return bool(moved)


def _stamps(frm: str, to: PaymentStatus, now: datetime) -> dict[str, Any]:
    sets: dict[str, Any] = {}
    if to in _STAMP:
        sets[_STAMP[to]] = now
    if frm == PaymentStatus.CONFIRMED and to != PaymentStatus.SETTLED:
        sets["confirmed_at"] = None  # a reorg took it back
    return sets
