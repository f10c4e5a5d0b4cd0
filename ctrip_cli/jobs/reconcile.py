"""One reconcile pass: read the balances of every deposit address the ledger can
explain at one block at least `confirmations` deep, compare each with what the
ledger explains there (`domain.ledger`), credit unexplained inflows to the payment
the scan would choose, and record every difference.

The reads happen outside any transaction; the block's hash is checked after them,
so a reorg during the reads aborts the pass with nothing written. The writes are ONE
transaction that locks the payments first and re-reads their ledger, so a scan
committing meanwhile is either seen or sees the credit (`crediting.
supersede_balance_credits`): money is never counted twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ctrip_cli.chain.client import BalanceQuery, BlockHeader, ChainClient
from ctrip_cli.config import ChainConfig, ScanSettings
from ctrip_cli.db import queries
from ctrip_cli.domain import ledger
from ctrip_cli.domain.statuses import PaymentStatus
from ctrip_cli.errors import ChainError, InputError
from ctrip_cli.jobs import reconcile_write

log = logging.getLogger("ctrip.reconcile")
WATCHED = (PaymentStatus.PENDING, PaymentStatus.DETECTED, PaymentStatus.CONFIRMED)
DifferenceItem = reconcile_write.DifferenceItem
balance_tx_hash = reconcile_write.balance_tx_hash


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    job: str
    chain: str
    skipped: str | None
    block: int | None = None
    block_hash: str | None = None
    head: int | None = None
    addresses: int = 0
    balances_read: int = 0
    unreadable: int = 0
    method: str | None = None
    inflows_credited: int = 0
    inflows_open: int = 0
    shortfalls: int = 0
    resolved: int = 0
    reorged: int = 0
    open_differences: int = 0
    payments_detected: int = 0
    payments_late: int = 0
    differences: list[DifferenceItem] = field(default_factory=list)
    rpc_calls: int = 0
    rpc_round_trips: int = 0


def pick_block(
    session: Session, chain: ChainClient, *, cfg: ChainConfig, at_block: int | None
) -> int | None:
    """The block to reconcile at: `at_block`, or the head less `confirmations`
    (never above the scan's cursor). None when that is below the block the last
    reconcile checked (the scan rewound a reorg): nothing to do until it is past.

    Raises:
        InputError: `at_block` is too shallow, not scanned yet, or below the block
            the last reconcile checked.
        ChainError: the chain was never scanned, or is not `confirmations` long.
    """
    head = chain.checked_head()
    deepest = head - cfg.confirmations
    with session.begin():
        cursor = queries.cursor_position(session, cfg.name)
        last = queries.get_reconcile_cursor(session, cfg.name)
        done = None if last is None else last.block_number
    if cursor is None:
        raise ChainError(
            f"chain {cfg.name!r} has never been scanned; run `ctrip scan --chain "
            f"{cfg.name}` first"
        )
    if at_block is None:
        block = min(deepest, cursor[0])
        if block < 0:
            raise ChainError(
                f"chain {cfg.name!r} is not {cfg.confirmations} blocks long yet"
            )
        return None if done is not None and block < done else block
    if at_block > deepest:
        raise InputError(
            f"--at-block {at_block}: the head is #{head:,}, and reconcile reads a "
            f"block at least confirmations ({cfg.confirmations}) deep; use "
            f"#{max(deepest, 0):,} or lower"
        )
    if at_block > cursor[0]:
        raise InputError(
            f"--at-block {at_block}: the scan has read up to #{cursor[0]:,} only; "
            f"run `ctrip scan --chain {cfg.name}` or use a lower block"
        )
    if done is not None and at_block < done:
        raise InputError(
            f"--at-block {at_block}: reconcile already checked #{done:,}; use that "
            "block or a later one"
        )
    return at_block


def run(
    session: Session,
    chain: ChainClient,
    *,
    cfg: ChainConfig,
    now: datetime,
    settings: ScanSettings,
    block: int | None,
    hook: Callable[[str], None] | None = None,
) -> ReconcileResult:
    """Reconcile `cfg`'s deposit addresses at `block` (see `pick_block`).

    `hook(step)` is called once the balances are read ("after_read") and once the
    write is committed ("after_commit"); the crash tests kill the pass there.

    Raises:
        ChainError: the RPC endpoints failed, the block changed during the reads (a
            reorg: rerun), or the scan has not yet rewound a reorg at the block.
        DatabaseError: the database failed.
    """
    head = chain.checked_head()
    if block is None:
        log.info("chain %s: waiting for the scan to pass the last reconcile", cfg.name)
        return ReconcileResult(job="reconcile", chain=cfg.name, skipped=None, head=head)
    (header,) = chain.block_headers([block])
    since = now - timedelta(seconds=settings.late_window_s)
    with session.begin():
        _check_scanned(session, cfg.name, header)
        addresses = queries.reconcile_addresses(
            session, cfg.name, statuses=WATCHED, since=since
        )
        view = reconcile_write.read_view(session, cfg.name, addresses)
    asked = _queries(view.payments)
    read = chain.balances_at(asked, block)
    if chain.block_hashes([block]).get(block) != header.hash:
        raise ChainError(
            f"block #{block:,} of chain {cfg.name!r} changed while its balances were "
            "read (a reorg); nothing was written, rerun the pass"
        )
    actual = {
        ledger.key(q.address, q.token): v
        for q, v in zip(asked, read.values, strict=True)
        if v is not None
    }
    explained = ledger.explain(view.transfers, view.sweeps, block)
    found = {
        k: f
        for k, v in actual.items()
        if (f := ledger.compare(explained.get(k, ledger.Explained()), v))
    }
    step = hook or (lambda _step: None)
    step("after_read")
    w = reconcile_write.Write(session, cfg, now, settings, header, actual)
    w.apply(found, {q.address for q in asked})
    step("after_commit")
    return ReconcileResult(
        job="reconcile",
        chain=cfg.name,
        skipped=None,
        block=block,
        block_hash=header.hash,
        head=head,
        addresses=len(addresses),
        balances_read=len(asked),
        unreadable=len(asked) - len(actual),
        method=read.method,
        inflows_credited=w.counts["credited"],
        inflows_open=w.counts["inflow_open"],
        shortfalls=w.counts["shortfall"],
        resolved=w.counts["resolved"],
        reorged=w.counts["reorged"],
        open_differences=w.counts["open_after"],
        payments_detected=w.credited.detected,
        payments_late=w.credited.late,
        differences=w.listed,
        rpc_calls=int(getattr(getattr(chain, "rpc", None), "calls_sent", 0)),
        rpc_round_trips=int(getattr(chain, "round_trips", 0)),
    )


def _check_scanned(session: Session, chain: str, header: BlockHeader) -> None:
    stored = queries.scanned_hashes(session, chain, since=header.number).get(
        header.number
    )
    if stored is not None and stored != header.hash:
        raise ChainError(
            f"chain {chain!r}: block #{header.number:,} is not the one the scan read "
            f"(a reorg the scan has not rewound yet); run `ctrip scan --chain {chain}`"
        )


def _queries(payments: Sequence[Any]) -> list[BalanceQuery]:
    """The native balance of every address, and each token its payments ask for."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for p in payments:
        tokens = wanted[p.address]
        if p.token_address is not None:
            tokens.add(p.token_address)
    out = []
    for address in sorted(wanted):
        out.append(BalanceQuery(address))
        out.extend(BalanceQuery(address, t) for t in sorted(wanted[address]))
    return out
