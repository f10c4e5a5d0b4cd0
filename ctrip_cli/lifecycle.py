"""The payment lifecycle, now in `domain.statuses` and `domain.lifecycle`; this name
stays for existing imports."""

from __future__ import annotations

from ctrip_cli.domain.lifecycle import (
    emit,
    event_row,
    move,
    new_id,
    payment_json,
    rfc3339,
    threshold,
    transition,
)
from ctrip_cli.domain.statuses import OPEN, EventType, PaymentStatus

PENDING = PaymentStatus.PENDING
DETECTED = PaymentStatus.DETECTED
CONFIRMED = PaymentStatus.CONFIRMED
SETTLED = PaymentStatus.SETTLED
EXPIRED = PaymentStatus.EXPIRED
STATUSES = tuple(PaymentStatus)
OPEN_STATUSES = OPEN
EVENT_TYPES = tuple(str(e) for e in EventType)

__all__ = [
    "CONFIRMED",
    "DETECTED",
    "EVENT_TYPES",
    "EXPIRED",
    "OPEN_STATUSES",
    "PENDING",
    "SETTLED",
    "STATUSES",
    "emit",
    "event_row",
    "move",
    "new_id",
    "payment_json",
    "rfc3339",
    "threshold",
    "transition",
]
