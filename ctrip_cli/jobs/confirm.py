"""One confirm pass: promote `detected` payments whose deep, canonical transfers reach
the asked amount (hashes re-checked against the node), and expire `pending` ones once
the scan has read past their deadline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from ctrip_cli.chain.client import ChainClient
from ctrip_cli.config import ChainConfig
from ctrip_cli.db import queries
from ctrip_cli.db.models import Transfer
from ctrip_cli.domain import lifecycle
from ctrip_cli.domain.statuses import EventType, PaymentStatus

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
    session: Session,
    chain: ChainClient,
    *,
    cfg: ChainConfig,
    now: datetime,
    tolerance_bps: int = 0,
) -> ConfirmResult:
    """Confirm detected payments whose deep transfers reach the asked amount (within
    `tolerance_bps`); expire pending ones the scan has read past the deadline of.

    Transfers still too shallow do not hold a payment back: someone sending dust to
    the address every block must not keep it `detected`.

    Raises:
        ChainError: the RPC endpoints failed or serve another chain.
        DatabaseError: the database failed.
    """
    head = chain.checked_head()
    with session.begin():
        detected = queries.payments_by_status(session, cfg.name, PaymentStatus.DETECTED)
        transfers = queries.transfers_of(session, [p.id for p in detected])
        cursor = queries.cursor_time(session, cfg.name)
    counted = {
        p.id: _deep(transfers.get(p.id, []), head, cfg.confirmations) for p in detected
    }
    deep = [
        p
        for p in detected
        if _sum(counted[p.id]) >= lifecycle.threshold(p.amount, tolerance_bps)
    ]
    canonical = chain.block_hashes(t.block_number for p in deep for t in counted[p.id])
    ready = [p for p in deep if _canonical(counted[p.id], canonical)]
    read_until = _read_until(chain, cursor, now)
    with session.begin():
        # A scan may have rewound transfers since the snapshot above: lock the
        # payments (scan credits under the same row locks) and confirm only those
        # whose checked transfers are all still recorded.
        queries.lock_payments(session, [p.id for p in ready])
        now_transfers = queries.transfers_of(session, [p.id for p in ready])
        ready = [
            p for p in ready if _ids(counted[p.id]) <= _ids(now_transfers.get(p.id, []))
        ]
        confirmed = lifecycle.move(
            session,
            ready,
            PaymentStatus.CONFIRMED,
            now=now,
            reason="transfers deep enough and canonical",
            event=EventType.CONFIRMED,
        )
        overdue = (
            []
            if read_until is None
            else queries.overdue_pending(session, cfg.name, read_until)
        )
        expired = lifecycle.move(
            session,
            overdue,
            PaymentStatus.EXPIRED,
            now=now,
            reason="deadline passed",
            event=EventType.EXPIRED,
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
        confirmed=len(confirmed),
        expired=len(expired),
        waiting=len(detected) - len(deep),
        not_canonical=len(deep) - len(ready),
        rpc_round_trips=int(getattr(chain, "round_trips", 0)),
    )


def _read_until(
    chain: ChainClient, cursor: tuple[int, datetime | None] | None, now: datetime
) -> datetime | None:
    """The latest deadline that may expire: `now`, but never past the timestamp of
    the block the scan has read up to (a lagging scan must not expire a payment paid
    in time). None before the first scan."""
    if cursor is None:
        return None
    number, block_time = cursor
    if block_time is None:  # a rewound cursor: read its block's timestamp
        (header,) = chain.block_headers([number])
        block_time = datetime.fromtimestamp(header.timestamp, UTC)
    return min(now, block_time)


def _deep(transfers: list[Transfer], head: int, confirmations: int) -> list[Transfer]:
    """The transfers at least `confirmations` deep (the head counts as 1) that move
    money (zero-value ones count for nothing)."""
    return [
        t
        for t in transfers
        if t.amount > 0 and head - t.block_number + 1 >= confirmations
    ]


def _sum(transfers: list[Transfer]) -> int:
    return sum(t.amount for t in transfers)


def _ids(transfers: list[Transfer]) -> set[int]:
    return {t.id for t in transfers}


def _canonical(transfers: list[Transfer], canonical: dict[int, str | None]) -> bool:
    return all(canonical.get(t.block_number) == t.block_hash for t in transfers)
