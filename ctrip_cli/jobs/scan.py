"""One scan pass: read new blocks up to the head, record matching transfers, credit
payments, rewind on reorgs. Each block batch commits its transfers, payment updates,
history, outbox events, block hashes and the cursor in ONE transaction.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ctrip_cli.chain.client import (
    BlockHeader,
    ChainClient,
    TokenTransfer,
    Transfers,
)
from ctrip_cli.config import ChainConfig, ScanSettings
from ctrip_cli.db import queries as sq
from ctrip_cli.domain.statuses import PaymentStatus
from ctrip_cli.errors import ChainError, ReorgTooDeepError, RpcUnavailableError
from ctrip_cli.jobs import crediting, scan_read
from ctrip_cli.jobs.scan_read import Transfer

log = logging.getLogger("ctrip.scan")
WATCHED = (PaymentStatus.PENDING, PaymentStatus.DETECTED, PaymentStatus.CONFIRMED)
MAX_BACKFILL_BLOCKS = 100_000
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ScanResult:
    job: str
    chain: str
    skipped: str | None
    from_block: int | None = None
    to_block: int | None = None
    head: int | None = None
    blocks_scanned: int = 0
    transfers_recorded: int = 0
    payments_detected: int = 0
    payments_late: int = 0
    payments_reorged: int = 0
    reorg_rewound_to: int | None = None
    lagging: bool = False
    rpc_round_trips: int = 0


@dataclass(slots=True)
class _Tally:
    blocks: int = 0
    recorded: int = 0
    detected: int = 0
    late: int = 0
    reorged: int = 0

    def add(self, c: crediting.Credited) -> None:
        self.detected += c.detected
        self.late += c.late
        self.reorged += c.reorged


@dataclass(frozen=True, slots=True)
class _Pass:
    session: Session
    chain: ChainClient
    cfg: ChainConfig
    settings: ScanSettings
    now: datetime
    reader: scan_read.Reader
    progress: Progress | None


def run(
    session: Session,
    chain: ChainClient,
    *,
    cfg: ChainConfig,
    now: datetime,
    settings: ScanSettings,
    from_block: int | None = None,
    to_block: int | None = None,
    progress: Progress | None = None,
) -> ScanResult:
    """Scan from the cursor (or `from_block`) up to the head (or `to_block`).

    Raises:
        ChainError: the RPC endpoints failed, serve another chain, or the fork is
            deeper than `reorg_depth_blocks` (ReorgTooDeepError).
        DatabaseError: the database failed.
    """
    head = chain.checked_head()
    with session.begin():
        watch = _load_watch(session, cfg, now, settings)
        cursor = sq.cursor_position(session, cfg.name)
        fresh_start = _initial_start(session, cfg, head, now) if cursor is None else 0
    reader = scan_read.Reader(chain, cfg, settings, watch, head)
    p = _Pass(session, chain, cfg, settings, now, reader, progress)
    tally = _Tally()
    if from_block is None and cursor is not None and head < cursor[0]:
        log.warning(
            "chain %s: node head #%d is behind the cursor #%d: lagging",
            cfg.name,
            head,
            cursor[0],
        )
        return _result(p, tally, None, None, head, None, lagging=True)
    rewound: int | None = None
    prev_hash: str | None = None
    if from_block is not None:
        start = from_block
    elif cursor is None:
        start = fresh_start
    else:
        rewound, prev_hash = _check_cursor(p, cursor, tally)
        start = (cursor[0] if rewound is None else rewound) + 1
        cursor = cursor if rewound is None else (rewound, prev_hash)
    end = head if to_block is None else min(to_block, head)
    scan = _Range(rescan=from_block is not None, cursor=cursor, prev_hash=prev_hash)
    last = _scan_range(p, start, end, scan, tally)
    return _result(p, tally, start, last, head, rewound)


@dataclass(slots=True)
class _Range:
    """Where a pass stands: whether it rescans, the cursor, the last block's hash."""

    rescan: bool
    cursor: tuple[int, str] | None
    prev_hash: str | None

    def moves_cursor(self, a: int, b: int) -> bool:
        # A rescan moves the cursor only when it extends it without a gap.
        return not self.rescan or (
            self.cursor is not None and a - 1 <= self.cursor[0] <= b
        )


def _result(
    p: _Pass,
    t: _Tally,
    start: int | None,
    last: int | None,
    head: int,
    rewound: int | None,
    *,
    lagging: bool = False,
) -> ScanResult:
    scanned = last is not None and start is not None and last >= start
    return ScanResult(
        job="scan",
        chain=p.cfg.name,
        skipped=None,
        from_block=start if scanned else None,
        to_block=last if scanned else None,
        head=head,
        blocks_scanned=t.blocks,
        transfers_recorded=t.recorded,
        payments_detected=t.detected,
        payments_late=t.late,
        payments_reorged=t.reorged,
        reorg_rewound_to=rewound,
        lagging=lagging,
        rpc_round_trips=int(getattr(p.chain, "round_trips", 0)),
    )


def _load_watch(
    session: Session, cfg: ChainConfig, now: datetime, s: ScanSettings
) -> scan_read.Watch:
    """Watched addresses; token ones only while recipient filters can hold them."""
    since = now - timedelta(seconds=s.late_window_s)
    tokens = {t.address.lower(): t.address for t in cfg.tokens.values()}
    n = sq.count_watched_token_payments(
        session, cfg.name, statuses=WATCHED, expired_since=since
    )
    filtered = math.ceil(n / s.address_chunk) <= s.max_filter_chunks
    watch = scan_read.Watch(
        tokens=tokens, token_payments=n, token_recipients=set() if filtered else None
    )
    rows = sq.watched_addresses(
        session,
        cfg.name,
        statuses=WATCHED,
        expired_since=since,
        native_only=not filtered,
    )
    for address, token in rows:
        if token is None:
            watch.native.add(address.lower())
        elif watch.token_recipients is not None and token.lower() in tokens:
            watch.token_recipients.add(address.lower())
    return watch


def _initial_start(session: Session, cfg: ChainConfig, head: int, now: datetime) -> int:
    """A fresh chain starts at `start_block`, else `reorg_depth_blocks` below the head,
    reaching further back (by `block_time_s`, at most MAX_BACKFILL_BLOCKS) to cover the
    oldest open payment."""
    if cfg.start_block is not None:
        return cfg.start_block
    back = cfg.reorg_depth_blocks
    oldest = sq.oldest_open_created_at(session, cfg.name, WATCHED)
    if oldest is not None:
        age_s = max((now - oldest).total_seconds(), 0.0)
        back = max(
            back, min(math.ceil(age_s / cfg.block_time_s) + 1, MAX_BACKFILL_BLOCKS)
        )
    return max(head - back, 0)


def _check_cursor(
    p: _Pass, cursor: tuple[int, str], tally: _Tally
) -> tuple[int | None, str]:
    """(block rewound to or None, hash of the block the scan continues from)."""
    number, stored = cursor
    now_hash = p.chain.block_hashes([number]).get(number)
    if now_hash is None or now_hash == stored:
        return None, stored
    return _rewind(p, number, tally)


def _rewind(p: _Pass, number: int, tally: _Tally) -> tuple[int, str]:
    """Find the common ancestor in the kept window, drop orphaned transfers, recredit."""
    depth = p.cfg.reorg_depth_blocks
    with p.session.begin():
        kept = sq.scanned_hashes(p.session, p.cfg.name, since=number - depth)
    canonical = p.chain.block_hashes(kept)
    ancestor = max((n for n, h in kept.items() if canonical.get(n) == h), default=None)
    if ancestor is None:
        raise ReorgTooDeepError(
            block=number, depth=depth, safe=max(number - 2 * depth, 0), chain=p.cfg.name
        )
    log.warning(
        "chain %s: reorg below #%d; rewinding to #%d", p.cfg.name, number, ancestor
    )
    with p.session.begin():
        affected = sq.delete_transfers_above(p.session, p.cfg.name, ancestor)
        sq.forget_blocks_above(p.session, p.cfg.name, ancestor)
        sq.set_cursor(p.session, p.cfg.name, ancestor, kept[ancestor], p.now)
        tally.add(_credit(p, affected, reason=f"reorg: rewound to #{ancestor}"))
    return ancestor, kept[ancestor]


def _credit(p: _Pass, ids: set[str], *, reason: str) -> crediting.Credited:
    return crediting.credit(
        p.session,
        ids,
        now=p.now,
        tolerance_bps=p.settings.underpayment_tolerance_bps,
        reason=reason,
    )


def _scan_range(
    p: _Pass, start: int, end: int, scan: _Range, tally: _Tally
) -> int | None:
    """Read and commit [start, end] in batches; returns the last block committed.

    Batches span `max_block_range` blocks (fewer, larger commits measured fastest),
    halve on timeouts and grow back while reads are fast.
    """
    cap = min(p.cfg.max_block_range, p.settings.batch_blocks or p.cfg.max_block_range)
    size, last, a = cap, None, start
    while a <= end:
        b = min(a + size - 1, end)
        began = time.monotonic()
        try:
            tip = _batch(p, a, b, scan, tally)
        except scan_read.Reorged:
            log.warning("chain %s: reorg below #%d during the pass", p.cfg.name, a)
            break
        except RpcUnavailableError:
            if size == 1:
                raise
            size = max(size // 2, 1)  # timeouts: the node may choke on the range
            continue
        if time.monotonic() - began < 1.0:
            size = min(size * 2, cap)
        last, scan.prev_hash, a = b, tip, b + 1
        if p.progress is not None:
            p.progress(b - start + 1, end - start + 1)
    return last


def _batch(p: _Pass, a: int, b: int, scan: _Range, tally: _Tally) -> str:
    """Read [a, b] and commit it, again if the chain moved meanwhile; returns b's hash."""
    for _ in range(scan_read.RETRIES_ON_MOVE):
        try:
            headers = p.reader.read_headers(a, b, scan.prev_hash)
            found = p.reader.read_transfers(a, b, headers)
            times = _block_times(p, headers, [*found.tokens, *found.native])
        except scan_read.ChainMoved:
            log.info(
                "chain %s: the chain moved while #%d-#%d was read", p.cfg.name, a, b
            )
            continue
        _commit_batch(p, a, b, headers, found, tally, scan, times)
        return headers[-1].hash
    raise ChainError(
        f"chain {p.cfg.name!r} kept changing (or its endpoints disagreed) while "
        f"#{a:,}-#{b:,} was read; rerun the scan"
    )


def _commit_batch(
    p: _Pass,
    a: int,
    b: int,
    headers: list[BlockHeader],
    found: Transfers,
    tally: _Tally,
    scan: _Range,
    times: dict[int, datetime],
) -> None:
    """ONE transaction for the batch: transfers, credits, block hashes, cursor."""
    name, reason = p.cfg.name, f"transfers in #{a:,}-#{b:,}"
    with p.session.begin():
        rows, affected = _rows(p, [*found.tokens, *found.native], times)
        affected |= sq.delete_superseded(p.session, rows)
        recorded = sq.insert_transfers(p.session, rows)
        # Money reconcile credited from a balance gives way to these transfers.
        affected |= crediting.supersede_balance_credits(p.session, name, rows)
        if scan.rescan:
            affected |= _drop_stale(p, a, b, headers, [*found.tokens, *found.native])
        credited = _credit(p, affected, reason=reason)
        window = [(h.number, h.hash, h.parent_hash) for h in headers]
        sq.replace_scanned_blocks(
            p.session, name, window, keep_from=b - p.cfg.reorg_depth_blocks
        )
        if scan.moves_cursor(a, b):
            sq.set_cursor(
                p.session, name, b, headers[-1].hash, p.now, _time(headers[-1])
            )
            scan.cursor = (b, headers[-1].hash)
    tally.add(credited)
    tally.recorded += recorded
    tally.blocks += b - a + 1


def _time(header: BlockHeader) -> datetime:
    return datetime.fromtimestamp(header.timestamp, UTC)


def _block_times(
    p: _Pass, headers: list[BlockHeader], found: Sequence[Transfer]
) -> dict[int, datetime]:
    """The timestamp of every block holding a transfer (lateness is judged by it):
    from the batch's headers, the rest read in one batch and checked against the
    transfers' block hashes.

    Raises:
        ChainMoved: a block changed since its transfers were read.
    """
    known = {h.number: h for h in headers}
    want = {t.block_number: t.block_hash for t in found}
    missing = sorted(n for n in want if n not in known)
    if missing:
        known.update({h.number: h for h in p.chain.block_headers(missing)})
    if any(known[n].hash != h for n, h in want.items()):
        raise scan_read.ChainMoved
    return {n: _time(known[n]) for n in want}


def _rows(
    p: _Pass, found: Sequence[Transfer], times: dict[int, datetime]
) -> tuple[list[dict[str, object]], set[str]]:
    """Transfer rows attributed to payments; transfers of assets nobody waits for drop."""
    if not found:
        return [], set()
    candidates: dict[tuple[str, str | None], list[Any]] = {}
    for row in sq.payments_at(p.session, p.cfg.name, {t.to_address for t in found}):
        key = (
            row.address.lower(),
            row.token_address.lower() if row.token_address else None,
        )
        candidates.setdefault(key, []).append(row)
    late_since = p.now - timedelta(seconds=p.settings.late_window_s)
    for key, group in list(candidates.items()):
        if not any(_watched(row, late_since) for row in group):
            del candidates[key]  # nobody waits there any more
    rows: list[dict[str, object]] = []
    for t in found:
        token = t.token_address.lower() if isinstance(t, TokenTransfer) else None
        payment_id = crediting.owner(candidates.get((t.to_address.lower(), token), []))
        if (
            payment_id is None or t.amount <= 0
        ):  # zero-value transfers count for nothing
            continue
        rows.append(
            {
                "chain": p.cfg.name,
                "tx_hash": t.tx_hash,
                "log_index": t.log_index,
                "block_number": t.block_number,
                "block_hash": t.block_hash,
                "from_address": t.from_address,
                "to_address": t.to_address,
                "token_address": t.token_address
                if isinstance(t, TokenTransfer)
                else None,
                "amount": t.amount,
                "payment_id": payment_id,
                "created_at": p.now,
                "block_time": times.get(t.block_number),
            }
        )
    return rows, {str(r["payment_id"]) for r in rows}


def _watched(row: Any, late_since: datetime) -> bool:
    if row.status in WATCHED:
        return True
    if row.status == PaymentStatus.SETTLED:
        return bool(row.settled_at is not None and row.settled_at >= late_since)
    return bool(row.status == PaymentStatus.EXPIRED and row.expires_at >= late_since)


def _drop_stale(
    p: _Pass, a: int, b: int, headers: list[BlockHeader], found: Sequence[Transfer]
) -> set[str]:
    """Rescans: delete recorded transfers of [a, b] whose block is no longer canonical."""
    recorded = sq.transfer_blocks(p.session, p.cfg.name, a, b)
    if not recorded:
        return set()
    canonical: dict[int, str | None] = {h.number: h.hash for h in headers}
    canonical.update({t.block_number: t.block_hash for t in found})
    missing = [n for n in recorded if n not in canonical]
    canonical.update(p.chain.block_hashes(missing))
    stale = {
        (n, h) for n, hashes in recorded.items() for h in hashes if h != canonical[n]
    }
    return sq.delete_transfers_in_blocks(p.session, p.cfg.name, stale)
