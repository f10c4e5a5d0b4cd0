"""The payment lifecycle: statuses, the payment's JSON shape, and guarded transitions.

A transition, its history row and its outbox event are written in the caller's
transaction, so they commit (or vanish) together.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ctrip_cli import redact
from ctrip_cli.db import queries
from ctrip_cli.db.models import Payment
from ctrip_cli.money import format_units

PENDING, DETECTED, CONFIRMED, SETTLED, EXPIRED = (
    "pending",
    "detected",
    "confirmed",
    "settled",
    "expired",
)
STATUSES = (PENDING, DETECTED, CONFIRMED, SETTLED, EXPIRED)
OPEN_STATUSES = (PENDING, DETECTED)
EVENT_TYPES = (
    "payment.detected",
    "payment.confirmed",
    "payment.expired",
    "payment.reorged",
    "payment.settled",
    "payment.late",
)


def rfc3339(at: datetime | None) -> str | None:
    """`2026-11-29T12:00:00.123456Z`: RFC 3339 in UTC."""
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def payment_json(p: Payment) -> dict[str, Any]:
    """The payment as CONTRACT.md shapes it; amounts are strings (exact past 2**53)."""
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


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def emit(session: Session, payment: Payment, event_type: str, *, now: datetime) -> str:
    """Write an outbox event whose body snapshots the payment as it is now."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type}")
    body = json.dumps(
        {"type": event_type, "timestamp": rfc3339(now), "data": payment_json(payment)},
        separators=(",", ":"),
    )
    return queries.add_webhook_event(
        session,
        event_id=new_id("msg"),
        payment_id=payment.id,
        event_type=event_type,
        url=payment.webhook_url,
        body=body,
        now=now,
    )


_STAMP = {DETECTED: "detected_at", CONFIRMED: "confirmed_at", SETTLED: "settled_at"}


def transition(
    session: Session,
    payment: Payment,
    to: str,
    *,
    now: datetime,
    reason: str,
    event: str | None,
) -> bool:
    """Move `payment` to status `to` if nobody changed its status meanwhile.

    Returns False (and writes nothing) when the guarded update matched no row.
    """
    frm = payment.status
    extra: dict[str, Any] = {}
    if to in _STAMP:
        extra[_STAMP[to]] = now
    if not queries.set_payment_status(
        session, payment, expected=frm, to=to, now=now, **extra
    ):
        return False
    queries.add_status_change(session, payment.id, frm, to, reason=reason, now=now)
    if event is not None:
        emit(session, payment, event, now=now)
    return True
