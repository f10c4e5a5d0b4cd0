"""Credit payments from their recorded transfers: attribution, amount received, and the
status changes that follow (detected, late, reorged), written set-based in the
caller's transaction together with their history rows and outbox events.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ctrip_cli import lifecycle
from ctrip_cli.db import scan_queries as sq
from ctrip_cli.db.models import Payment

log = logging.getLogger("ctrip.scan")
OPEN = (lifecycle.PENDING, lifecycle.DETECTED)


@dataclass(slots=True)
class Credited:
    """What a crediting step changed, counted for the pass's result."""

    detected: int = 0
    late: int = 0
    reorged: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


def owner(candidates: list[Any]) -> str | None:
    """The payment a transfer belongs to, among the payments at its (address, asset).

    The oldest open (pending/detected) one; if none is open, the newest (a late payment
    or an overpayment). `candidates` are rows with id, status and created_at.
    """
    if not candidates:
        return None
    open_ = [c for c in candidates if c.status in OPEN]
    if open_:
        return str(min(open_, key=lambda c: (c.created_at, c.id)).id)
    return str(max(candidates, key=lambda c: (c.created_at, c.id)).id)


def threshold(amount: int, tolerance_bps: int) -> int:
    """The least amount that counts as paid, in exact integer math."""
    return amount - amount * tolerance_bps // 10_000


def credit(
    session: Session,
    payment_ids: set[str],
    *,
    now: datetime,
    tolerance_bps: int,
    reason: str,
) -> Credited:
    """Recompute `amount_received` of `payment_ids` and apply the status changes.

    Runs in the caller's transaction; payments are locked FOR UPDATE on PostgreSQL.
    """
    out = Credited()
    if not payment_ids:
        return out
    payments = sq.lock_payments(session, payment_ids)
    sums = sq.transfer_sums(session, payment_ids)
    changed = {p.id: sums[p.id] for p in payments if p.amount_received != sums[p.id]}
    sq.set_amounts_received(session, changed, now=now)
    moves: dict[tuple[str, str], list[Payment]] = defaultdict(list)
    newly_late: list[Payment] = []
    for p in payments:
        before = p.amount_received
        _commit(p, amount_received=sums[p.id], updated_at=now)
        plan = _plan(p, before, now=now, tolerance_bps=tolerance_bps)
        if plan == "late-only":
            newly_late.append(p)
        elif plan is not None:
            moves[(p.status, plan)].append(p)
    _mark_late(session, newly_late, now=now, out=out)
    for (frm, to), group in moves.items():
        _move(session, group, frm, to, now=now, reason=reason, out=out)
    _write_events(session, out.events)
    return out


def _plan(p: Payment, before: int, *, now: datetime, tolerance_bps: int) -> str | None:
    """The status `p` should move to, "late-only", or None."""
    enough = p.amount_received >= threshold(p.amount, tolerance_bps)
    if p.status == lifecycle.PENDING and enough:
        return lifecycle.DETECTED
    if p.status == lifecycle.EXPIRED and p.amount_received > before:
        return lifecycle.DETECTED if enough else ("late-only" if not p.late else None)
    if p.status in (lifecycle.DETECTED, lifecycle.CONFIRMED) and not enough:
        return lifecycle.EXPIRED if now >= p.expires_at else lifecycle.PENDING
    if p.status == lifecycle.SETTLED and p.amount_received < before:
        log.warning(
            "payment %s was settled but a reorg removed funds it counted (%d < %d base units)",
            p.id,
            p.amount_received,
            before,
        )
    return None


def _mark_late(
    session: Session, group: list[Payment], *, now: datetime, out: Credited
) -> None:
    sq.set_late(session, {p.id for p in group}, now=now)
    for p in group:
        _commit(p, late=True)
        out.late += 1
        out.events.append(_event(p, "payment.late", now))


def _move(
    session: Session,
    group: list[Payment],
    frm: str,
    to: str,
    *,
    now: datetime,
    reason: str,
    out: Credited,
) -> None:
    extra: dict[str, Any] = {}
    late = frm == lifecycle.EXPIRED and to == lifecycle.DETECTED
    if to == lifecycle.DETECTED:
        extra["detected_at"] = now
    if late:
        extra["late"] = True
    if frm == lifecycle.CONFIRMED:
        extra["confirmed_at"] = None
    moved = sq.set_statuses(
        session, [p.id for p in group], expected=frm, to=to, now=now, **extra
    )
    event = "payment.late" if late else "payment.detected"
    if to != lifecycle.DETECTED:
        event = "payment.reorged"
    history = []
    for p in group:
        if p.id not in moved:
            continue
        _commit(p, status=to, **extra)
        history.append(
            {
                "payment_id": p.id,
                "from_status": frm,
                "to_status": to,
                "reason": reason,
                "at": now,
            }
        )
        out.events.append(_event(p, event, now))
        if event == "payment.reorged":
            out.reorged += 1
            if frm == lifecycle.CONFIRMED:
                log.warning(
                    "payment %s was confirmed but a reorg removed its funds", p.id
                )
        elif late:
            out.late += 1
        else:
            out.detected += 1
    sq.add_status_changes(session, history)


def _commit(p: Payment, **values: Any) -> None:
    # The rows were updated set-based; keep the detached copies in step for the events.
    for key, value in values.items():
        setattr(p, key, value)


def _event(p: Payment, event_type: str, now: datetime) -> dict[str, Any]:
    body = json.dumps(
        {
            "type": event_type,
            "timestamp": lifecycle.rfc3339(now),
            "data": lifecycle.payment_json(p),
        },
        separators=(",", ":"),
    )
    return {
        "id": lifecycle.new_id("msg"),
        "payment_id": p.id,
        "type": event_type,
        "url": p.webhook_url,
        "body": body,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def _write_events(session: Session, events: list[dict[str, Any]]) -> None:
    sq.add_webhook_events(session, events)
