"""The status vocabulary: payments, webhook event types, sweep transactions."""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "pending"
    DETECTED = "detected"
    CONFIRMED = "confirmed"
    SETTLED = "settled"
    EXPIRED = "expired"


# Still waiting for (more of) the asked amount.
OPEN = (PaymentStatus.PENDING, PaymentStatus.DETECTED)
# Its money is the treasury's once deep enough: swept, and again when more arrives.
SWEEPABLE = (PaymentStatus.CONFIRMED, PaymentStatus.SETTLED)


class EventType(StrEnum):
    DETECTED = "payment.detected"
    CONFIRMED = "payment.confirmed"
    EXPIRED = "payment.expired"
    REORGED = "payment.reorged"
    SETTLED = "payment.settled"
    LATE = "payment.late"
    # More money arrived on a payment already confirmed or settled; it gets a sweep
    # of its own.
    OVERPAID = "payment.overpaid"


class SweepState(StrEnum):
    HELD = "held"  # a token sweep waiting for its gas top-up
    SIGNED = "signed"
    PENDING = "pending"
    MINED = "mined"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    REPLACED = "replaced"


LIVE_SWEEP_STATES = (
    SweepState.HELD,
    SweepState.SIGNED,
    SweepState.PENDING,
    SweepState.MINED,
)


class SweepKind(StrEnum):
    NATIVE = "native"
    TOKEN = "token"  # noqa: S105 - an ERC-20 sweep, not a credential
    TOPUP = "topup"
