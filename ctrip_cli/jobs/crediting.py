"""Credit payments from their recorded transfers: attribution, amount received, and the
status changes that follow (detected, late, reorged, overpaid), written set-based in
the caller's transaction through the one transition (`domain.lifecycle.move`).

Lateness is judged by block timestamps: a payment is late when the transfers mined
before its deadline do not reach the asked amount (within the tolerance).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ctrip_cli.db import queries
from ctrip_cli.db.models import Payment
from ctrip_cli.domain import ledger, lifecycle
from ctrip_cli.domain.statuses import OPEN, EventType, PaymentStatus

log = logging.getLogger("ctrip.scan")
S = PaymentStatus
threshold = lifecycle.threshold


@dataclass(slots=True)
class Credited:
    """What a crediting step changed, counted for the pass's result."""

    detected: int = 0
    late: int = 0
    reorged: int = 0
    overpaid: int = 0


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


@dataclass(frozen=True, slots=True)
class _Step:
    """Where one payment goes: a status (with its late flag), and events without one."""

    to: PaymentStatus | None = None
    late: bool = False
    event: EventType | None = None  # an event without a status change


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
    payments = queries.lock_payments(session, payment_ids)
    sums = queries.received_sums(session, payment_ids)
    changed = {
        p.id: sums[p.id].total
        for p in payments
        if p.amount_received != sums[p.id].total
    }
    queries.set_amounts_received(session, changed, now=now)
    moves: dict[tuple[PaymentStatus, bool], list[Payment]] = defaultdict(list)
    for p in payments:
        before, got = p.amount_received, sums[p.id]
        p.amount_received, p.updated_at = got.total, now
        step = _plan(p, before, got, now=now, tolerance_bps=tolerance_bps)
        if step.to is not None:
            moves[(step.to, step.late)].append(p)
        elif step.event is not None:
            _event_only(session, p, step.event, before, now=now, out=out)
    for (to, late), group in moves.items():
        _move(session, group, to, late, now=now, reason=reason, out=out)
    return out


def _plan(
    p: Payment,
    before: int,
    got: queries.Received,
    *,
    now: datetime,
    tolerance_bps: int,
) -> _Step:
    least = threshold(p.amount, tolerance_bps)
    enough = got.total >= least
    late = got.on_time < least
    if p.status == S.PENDING and enough:
        return _Step(S.DETECTED, late=late)
    if p.status == S.EXPIRED and got.total > before:
        # Money after the deadline: enough completes the payment (late unless the
        # blocks say it was paid in time); too little keeps it expired, held for a
        # refund, and `payment.late` tells the shortfall.
        return _Step(S.DETECTED, late=late) if enough else _Step(event=EventType.LATE)
    if p.status in (S.DETECTED, S.CONFIRMED) and not enough:
        return _Step(S.EXPIRED if now >= p.expires_at else S.PENDING)
    if p.status in (S.CONFIRMED, S.SETTLED) and got.total > before:
        return _Step(event=EventType.OVERPAID)
    if p.status == S.SETTLED and got.total < before:
        log.warning(
            "payment %s was settled but a reorg removed funds it counted (%d < %d base units)",
            p.id,
            got.total,
            before,
        )
    return _Step()


def _event_only(
    session: Session,
    p: Payment,
    event: EventType,
    before: int,
    *,
    now: datetime,
    out: Credited,
) -> None:
    if event == EventType.LATE:
        queries.set_late(session, {p.id}, now=now)
        p.late = True
        out.late += 1
    else:
        out.overpaid += 1
    extra = {"received_base_units": str(p.amount_received - before)}
    queries.add_webhook_events(session, [lifecycle.event_row(p, event, now, extra)])


def _move(
    session: Session,
    group: list[Payment],
    to: PaymentStatus,
    late: bool,
    *,
    now: datetime,
    reason: str,
    out: Credited,
) -> None:
    event = EventType.REORGED
    if to == S.DETECTED:
        event = EventType.LATE if late else EventType.DETECTED
    values = {"late": True} if late else None
    was_confirmed = {p.id for p in group if p.status == S.CONFIRMED}
    moved = lifecycle.move(
        session, group, to, now=now, reason=reason, event=event, values=values
    )
    for p in moved:
        if event == EventType.REORGED:
            out.reorged += 1
            if p.id in was_confirmed:
                log.warning(
                    "payment %s was confirmed but a reorg removed its funds", p.id
                )
        elif late:
            out.late += 1
        else:
            out.detected += 1


def supersede_balance_credits(
    session: Session, chain: str, rows: Sequence[Mapping[str, Any]]
) -> set[str]:
    """Shrink the balance credits that transfers just recorded (`rows`) explain.

    `reconcile` credits money it finds in a balance and no transfer explains; when a
    transfer at or below that credit's block is recorded later (a rescan with
    traces, a log read late), it is the same money, so the credit gives way to it
    instead of counting twice. Call in the transaction that inserted `rows`, after
    the insert: on PostgreSQL the insert holds each payment's row (its foreign key
    takes FOR KEY SHARE), so a reconcile, which locks the payments FOR UPDATE before
    it credits, either committed before it (and its credit is read here) or waits
    for this transaction (and reads these transfers); SQLite runs one writer at a
    time. Returns the payments whose credits changed (to credit again).
    """
    if not rows:
        return set()
    lowest = min(int(r["block_number"]) for r in rows)
    new = {ledger.key(r["to_address"], r["token_address"]) for r in rows}
    credited = {
        (a, t)
        for a, t in queries.balance_credits_since(session, chain, lowest)
        if ledger.key(a, t) in new
    }
    return rebalance_credits(session, chain, credited)


def rebalance_credits(
    session: Session, chain: str, pairs: Collection[tuple[str, str | None]]
) -> set[str]:
    """Recompute what every balance credit of the (address, token) `pairs` is worth
    from the transfers recorded now (`ledger.superseded`); returns the payments whose
    credits changed."""
    if not pairs:
        return set()
    keys = {ledger.key(a, t) for a, t in pairs}
    payments = queries.payments_at(session, chain, {a for a, _ in pairs})
    rows = queries.ledger_transfers(session, {p.id for p in payments})
    by_key: dict[ledger.Key, list[queries.LedgerTransfer]] = defaultdict(list)
    for t in rows:
        by_key[ledger.key(t.to_address, t.token_address)].append(t)
    changed: dict[int, int] = {}
    touched: set[str] = set()
    for k in keys:
        credits = [t for t in by_key[k] if t.source == queries.BALANCE]
        events = [t for t in by_key[k] if t.source != queries.BALANCE]
        diffs = {
            d.transfer_tx_hash: d
            for d in queries.credit_differences(
                session, chain, [t.tx_hash for t in credits]
            )
        }
        worth = ledger.superseded(
            [
                ledger.Credit(t.id, t.block_number, d.amount, d.ledger_received or 0)
                for t in credits
                if (d := diffs.get(t.tx_hash)) is not None
            ],
            events,
        )
        for t in credits:
            if t.id in worth and worth[t.id] != t.amount:
                changed[t.id] = worth[t.id]
                touched.add(t.payment_id)
                d = diffs[t.tx_hash]
                d.resolution = "superseded" if worth[t.id] < d.amount else "credited"
                d.note = _superseded_note(d.amount, worth[t.id])
    queries.set_transfer_amounts(session, changed)
    session.flush()
    return touched


def _superseded_note(original: int, worth: int) -> str:
    if worth == original:
        return "credited from the balance"
    return (
        f"{original - worth} of {original} base units were later found in transfers "
        "read from the chain; the credit keeps the rest"
    )
