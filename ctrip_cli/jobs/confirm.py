"""One confirm pass: promote `detected` payments whose transfers are deep enough and
still canonical (hashes re-checked against the node), and expire overdue `pending` ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ctrip_cli import lifecycle
from ctrip_cli.chain.client import ChainClient
from ctrip_cli.config import ChainConfig
from ctrip_cli.db import scan_queries as sq
from ctrip_cli.db.models import Payment, Transfer

log = logging.getLogger("ctrip.confirm")


@dataclass(frozen=True, slots=True)
class ConfirmResult:
    job: str
    chain: str
    skipped: str | None
    head: int | None = None
    confirmed: int = 0
    expired: int = 0
    waiting: int = 0
    not_canonical: int = 0
    rpc_round_trips: int = 0


def run(
    session: Session, chain: ChainClient, *, cfg: ChainConfig, now: datetime
) -> ConfirmResult:
    """Confirm deep-enough detected payments; expire overdue pending ones.

    Raises:
        ChainError: the RPC endpoints failed or serve another chain.
        DatabaseError: the database failed.
    """
    head = chain.checked_head()
    with session.begin():
        detected = sq.payments_by_status(session, cfg.name, lifecycle.DETECTED)
        transfers = sq.transfers_of(session, [p.id for p in detected])
    deep = [
        p for p in detected if _deep(transfers.get(p.id, []), head, cfg.confirmations)
    ]
    canonical = chain.block_hashes(
        t.block_number for p in deep for t in transfers.get(p.id, [])
    )
    ready = [p for p in deep if _canonical(transfers.get(p.id, []), canonical)]
    with session.begin():
        # A scan may have credited new (shallow) transfers since the snapshot above:
        # lock the payments (scan credits under the same row locks) and confirm only
        # those whose transfers are still exactly the ones checked.
        sq.lock_payments(session, [p.id for p in ready])
        now_transfers = sq.transfers_of(session, [p.id for p in ready])
        ready = [
            p
            for p in ready
            if _ids(now_transfers.get(p.id, [])) == _ids(transfers.get(p.id, []))
        ]
        confirmed = sum(_confirm(session, p, now) for p in ready)
        expired = sum(
            _expire(session, p, now) for p in sq.overdue_pending(session, cfg.name, now)
        )
    if len(ready) < len(deep):
        log.warning(
            "chain %s: %d payments have transfers in blocks no longer canonical; "
            "the next scan rewinds them",
            cfg.name,
            len(deep) - len(ready),
        )
    return ConfirmResult(
        job="confirm",
        chain=cfg.name,
        skipped=None,
        head=head,
        confirmed=confirmed,
        expired=expired,
        waiting=len(detected) - len(deep),
        not_canonical=len(deep) - len(ready),
        rpc_round_trips=int(getattr(chain, "round_trips", 0)),
    )


def _deep(transfers: list[Transfer], head: int, confirmations: int) -> bool:
    """Every counted transfer is at least `confirmations` deep (the head counts as 1)."""
    return bool(transfers) and all(
        head - t.block_number + 1 >= confirmations for t in transfers
    )


def _ids(transfers: list[Transfer]) -> set[int]:
    return {t.id for t in transfers}


def _canonical(transfers: list[Transfer], canonical: dict[int, str | None]) -> bool:
    return all(canonical.get(t.block_number) == t.block_hash for t in transfers)


def _confirm(session: Session, p: Payment, now: datetime) -> int:
    moved = lifecycle.transition(
        session,
        p,
        lifecycle.CONFIRMED,
        now=now,
        reason="transfers deep enough and canonical",
        event="payment.confirmed",
    )
    return int(moved)


def _expire(session: Session, p: Payment, now: datetime) -> int:
    moved = lifecycle.transition(
        session,
        p,
        lifecycle.EXPIRED,
        now=now,
        reason="deadline passed",
        event="payment.expired",
    )
    return int(moved)
