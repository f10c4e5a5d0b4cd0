"""Creating and reading payments: the functions a merchant backend calls directly.

from ctrip_cli.payments import create_payment
with Session(engine) as session, session.begin():
    payment = create_payment(session, settings, chain="bsc", asset="USDT", amount="12.5")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ctrip_cli import inputs, lifecycle
from ctrip_cli.chain.signer import KeyRing
from ctrip_cli.config import Settings
from ctrip_cli.db import queries
from ctrip_cli.db.models import Payment
from ctrip_cli.errors import InputError
from ctrip_cli.money import format_units, parse_units

MAX_EXPIRES_IN_S = 365 * 86_400
_EXAMPLE_ID = "pay_0123456789abcdef0123456789abcdef"


@dataclass(frozen=True, slots=True)
class PaymentDetail:
    payment: dict[str, Any]
    transfers: list[dict[str, Any]]
    history: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {**self.payment, "transfers": self.transfers, "history": self.history}


def create_payment(
    session: Session,
    settings: Settings,
    *,
    chain: str,
    asset: str,
    amount: str,
    now: datetime,
    expires_in_s: int | None = None,
    webhook_url: str | None = None,
    reference: str | None = None,
    keys: KeyRing | None = None,
) -> dict[str, Any]:
    """Create a pending payment with its own deposit address, in the caller's transaction.

    Raises:
        ConfigError: unknown chain or asset, or no usable mnemonic.
        InputError: a bad amount, expiry, webhook URL or reference.
    """
    cfg = settings.chain(chain)
    token_address, decimals = cfg.asset(asset)
    units = parse_units(str(amount), decimals)
    expires_in_s = (
        settings.default_expires_in_s if expires_in_s is None else expires_in_s
    )
    if not 0 < expires_in_s <= MAX_EXPIRES_IN_S:
        raise InputError(f"--expires-in {expires_in_s}s: must be between 1s and 365d")
    if webhook_url is not None:
        inputs.check_webhook_url(webhook_url)
    if reference is not None:
        inputs.check_reference(reference)
    keys = keys or KeyRing.for_chain(settings.mnemonic, cfg)
    index = queries.allocate_deposit_index(session)
    address = keys.deposit_address(index)
    row: dict[str, Any] = {
        "id": lifecycle.new_id("pay"),
        "chain": chain,
        "asset": asset,
        "token_address": token_address,
        "decimals": decimals,
        "address": address,
        "derivation_index": index,
        "amount": units,
        "amount_received": 0,
        "amount_swept": 0,
        "status": lifecycle.PENDING,
        "late": False,
        "reference": reference,
        "webhook_url": webhook_url,
        "created_at": now,
        "expires_at": now + timedelta(seconds=expires_in_s),
        "updated_at": now,
        "detected_at": None,
        "confirmed_at": None,
        "settled_at": None,
    }
    queries.add_new_payment(session, row, reason="created")
    return lifecycle.payment_json(Payment(**row))


def list_payments(
    session: Session,
    *,
    chain: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first.

    Raises:
        InputError: an unknown status.
    """
    if status is not None and status not in lifecycle.STATUSES:
        raise InputError(
            f"--status {status!r}: not a payment status ({', '.join(lifecycle.STATUSES)})"
        )
    rows = queries.list_payments(session, chain=chain, status=status, limit=limit)
    return [lifecycle.payment_json(p) for p in rows]


def show_payment(session: Session, payment_id: str) -> PaymentDetail:
    """The payment with its transfers and status history.

    Raises:
        InputError: no payment has this id.
    """
    inputs.check_id(payment_id, what="payment", example=_EXAMPLE_ID)
    payment = queries.get_payment(session, payment_id)
    if payment is None:
        raise InputError(
            f"No such payment {payment_id!r}; `ctrip payments list` shows the ids"
        )
    transfers = [
        {
            "tx_hash": t.tx_hash,
            "log_index": t.log_index,
            "block_number": t.block_number,
            "block_hash": t.block_hash,
            "from": t.from_address,
            "amount": format_units(t.amount, payment.decimals),
            "amount_base_units": str(t.amount),
            # "log", "transaction", "trace", or "balance" (found by reconcile in
            # blocks from_block..block_number; tx_hash is then its own key).
            "source": transfer_source(t.log_index, t.source),
            "from_block": t.from_block,
        }
        for t in queries.payment_transfers(session, payment_id)
    ]
    history = [
        {
            "from": h.from_status,
            "to": h.to_status,
            "reason": h.reason,
            "at": lifecycle.rfc3339(h.at),
        }
        for h in queries.payment_history(session, payment_id)
    ]
    return PaymentDetail(lifecycle.payment_json(payment), transfers, history)


def transfer_source(log_index: int, source: str | None) -> str:
    """Where a recorded transfer was read from."""
    if source is not None:
        return source
    if log_index >= 0:
        return "log"
    return "transaction" if log_index == -1 else "trace"
