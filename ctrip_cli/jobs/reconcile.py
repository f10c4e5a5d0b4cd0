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

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ctrip_cli.chain.client import BalanceQuery, BlockHeader, ChainClient
from ctrip_cli.config import ChainConfig, ScanSettings
from ctrip_cli.db import queries
from ctrip_cli.db.models import ReconcileDifference
from ctrip_cli.domain import ledger
from ctrip_cli.domain.statuses import PaymentStatus
from ctrip_cli.errors import ChainError, InputError
from ctrip_cli.jobs import crediting

log = logging.getLogger("ctrip.reconcile")
WATCHED = (PaymentStatus.PENDING, PaymentStatus.DETECTED, PaymentStatus.CONFIRMED)
BALANCE_LOG_INDEX = -2  # transfers.log_index of a balance credit
MAX_LISTED = 1_000  # differences listed in the result (all are recorded)
CREDITED, SUPERSEDED, OPEN, RESOLVED, REORGED = (
    "credited",
    "superseded",
    "open",
    "resolved",
    "reorged",
)


@dataclass(frozen=True, slots=True)
class DifferenceItem:
    """A difference this pass found, as the result lists it (base units as strings)."""

    address: str
    asset: str
    block: int
    kind: str
    resolution: str
    expected_base_units: str
    actual_base_units: str
    amount_base_units: str
    payment_id: str | None = None
    note: str | None = None


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


@dataclass(slots=True)
class _View:
    """The ledger of the addresses checked, as read in one transaction."""

    payments: list[Any]
    transfers: list[queries.LedgerTransfer]
    sweeps: list[queries.SweepMove]

    def at(self) -> dict[tuple[str, str | None], list[Any]]:
        """Payments by (address, token) key."""
        out: dict[tuple[str, str | None], list[Any]] = defaultdict(list)
        for p in self.payments:
            out[ledger.key(p.address, p.token_address)].append(p)
        return out


def _view(session: Session, chain: str, addresses: Sequence[str]) -> _View:
    payments = queries.payments_at(session, chain, addresses)
    transfers = queries.ledger_transfers(session, [p.id for p in payments])
    return _View(payments, transfers, queries.sweep_moves(session, chain, addresses))


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
        view = _view(session, cfg.name, addresses)
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
    w = _Write(session, cfg, now, settings, header, actual)
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


def balance_tx_hash(chain: str, k: ledger.Key, block: int) -> str:
    """The key of a balance credit: one per (chain, address, asset, block), so a
    rerun at the same block inserts nothing new."""
    text = f"balance:{chain}:{k[0]}:{k[1] or ''}:{block}"
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


class _Write:
    """The pass's one write transaction: credits, differences, the cursor."""

    def __init__(
        self,
        session: Session,
        cfg: ChainConfig,
        now: datetime,
        settings: ScanSettings,
        header: BlockHeader,
        actual: dict[ledger.Key, int],
    ) -> None:
        self.session, self.cfg, self.now, self.settings = session, cfg, now, settings
        self.header, self.actual = header, actual
        self.counts: dict[str, int] = defaultdict(int)
        self.listed: list[DifferenceItem] = []
        self.credited = crediting.Credited()
        self.originals: dict[str, str] = {}
        self.prev: tuple[int, datetime] | None = None

    @property
    def block(self) -> int:
        return self.header.number

    def apply(self, found: dict[ledger.Key, ledger.Finding], checked: set[str]) -> None:
        """Record `found` (re-derived under the payments' locks) and resolve the open
        differences no longer found, in one transaction."""
        s = self.session
        with s.begin():
            prev = queries.get_reconcile_cursor(s, self.cfg.name)
            self.prev = None if prev is None else (prev.block_number, prev.at)
            open_ = {
                (ledger.key(d.address, d.token_address), d.kind): d
                for d in queries.open_differences(s, self.cfg.name)
            }
            flagged = set(found) | {k for k, _ in open_}
            originals = self._lock(flagged, checked)
            view = _view(s, self.cfg.name, sorted(originals))
            explained = ledger.explain(view.transfers, view.sweeps, self.block)
            owners = view.at()
            credited: set[str] = set()
            for k in sorted(flagged, key=lambda x: (x[0], x[1] or "")):
                if k not in self.actual:
                    continue  # unreadable this time: leave what is open
                e = explained.get(k, ledger.Explained())
                f = ledger.compare(e, self.actual[k])
                self._settle(k, f, open_, owners.get(k, []), e, credited)
            self._mark_reorged()
            self.credited = crediting.credit(
                s,
                credited,
                now=self.now,
                tolerance_bps=self.settings.underpayment_tolerance_bps,
                reason=f"balance at #{self.block:,} (reconcile)",
            )
            queries.set_reconcile_cursor(
                s, self.cfg.name, self.block, self.header.hash, self.now
            )
            self.counts["open_after"] = len(queries.open_differences(s, self.cfg.name))

    def _lock(self, flagged: set[ledger.Key], checked: set[str]) -> set[str]:
        """Lock the payments at the flagged addresses; returns those addresses as
        stored (checksummed)."""
        wanted = {a for a, _ in flagged}
        originals = {a for a in checked if a.lower() in wanted}
        self.originals = {a.lower(): a for a in originals}
        payments = queries.payments_at(self.session, self.cfg.name, originals)
        queries.lock_payments(self.session, {p.id for p in payments})
        return originals

    def _settle(
        self,
        k: ledger.Key,
        f: ledger.Finding | None,
        open_: dict[tuple[ledger.Key, str], ReconcileDifference],
        owners: list[Any],
        e: ledger.Explained,
        credited: set[str],
    ) -> None:
        for kind in (ledger.INFLOW, ledger.SHORTFALL):
            d = open_.get((k, kind))
            if d is not None and (f is None or f.kind != kind):
                self._resolve(d)
        if f is None:
            return
        same = open_.get((k, f.kind))
        if same is not None and same.amount == f.amount:
            same.last_seen_at, same.last_seen_block = self.now, self.block
            return
        if same is not None:
            self._resolve(same)
        if f.kind == ledger.INFLOW:
            owner = self._owner(k, owners)
            if owner is not None:
                self._credit(k, f, owner, e, credited)
                return
        self._record(k, f, OPEN, owners, note=self._why_open(k, f, owners))

    def _owner(self, k: ledger.Key, owners: list[Any]) -> Any:
        """The payment the scan's rule credits, if crediting is on for the asset."""
        if k[1] is None and self.cfg.native_internal == "off":
            return None
        pid = crediting.owner(owners)
        return next((p for p in owners if p.id == pid), None)

    def _why_open(self, k: ledger.Key, f: ledger.Finding, owners: list[Any]) -> str:
        if f.kind == ledger.SHORTFALL:
            return (
                "the address holds less than the ledger explains: funds moved by a "
                "transaction ctrip did not sign (or a receipt not yet recorded)"
            )
        if not owners:
            return "no payment at this address asks for this asset; refund it or move it by hand"
        return "native_internal is off: coin found in balances is not credited"

    def _credit(
        self,
        k: ledger.Key,
        f: ledger.Finding,
        payment: Any,
        e: ledger.Explained,
        credited: set[str],
    ) -> None:
        tx_hash = balance_tx_hash(self.cfg.name, k, self.block)
        row = {
            "chain": self.cfg.name,
            "tx_hash": tx_hash,
            "log_index": BALANCE_LOG_INDEX,
            "block_number": self.block,
            "block_hash": self.header.hash,
            "block_time": datetime.fromtimestamp(self.header.timestamp, UTC),
            "from_address": None,
            "to_address": payment.address,
            "token_address": payment.token_address,
            "amount": f.amount,
            "payment_id": payment.id,
            "created_at": self.now,
            "source": queries.BALANCE,
            "from_block": self._from_block(payment),
        }
        if not queries.insert_transfers(self.session, [row]):
            return  # credited by an earlier run at this block
        self._record(
            k,
            f,
            CREDITED,
            [payment],
            note="credited from the balance",
            payment_id=payment.id,
            tx_hash=tx_hash,
            ledger_received=e.received,
            from_block=row["from_block"],
        )
        credited.add(payment.id)
        self.counts["credited"] += 1
        log.info(
            "chain %s: %s holds %d base units of %s nobody recorded; credited to %s",
            self.cfg.name,
            payment.address,
            f.amount,
            payment.asset,
            payment.id,
        )

    def _from_block(self, payment: Any) -> int | None:
        """The money arrived after the previous reconcile's block, if it checked
        this payment's address (the payment existed then)."""
        if self.prev is None or payment.created_at > self.prev[1]:
            return None
        return int(self.prev[0]) + 1

    def _record(
        self,
        k: ledger.Key,
        f: ledger.Finding,
        resolution: str,
        payments: list[Any],
        *,
        note: str,
        payment_id: str | None = None,
        tx_hash: str | None = None,
        ledger_received: int | None = None,
        from_block: int | None = None,
    ) -> None:
        address = payments[0].address if payments else self._address(k)
        asset = self._asset(k, payments)
        queries.add_difference(
            self.session,
            ReconcileDifference(
                chain=self.cfg.name,
                address=address,
                asset=asset,
                token_address=self._token(k, payments),
                block_number=self.block,
                block_hash=self.header.hash,
                from_block=from_block,
                expected=f.expected,
                actual=f.actual,
                amount=f.amount,
                ledger_received=ledger_received,
                kind=f.kind,
                resolution=resolution,
                note=note,
                payment_id=payment_id,
                transfer_tx_hash=tx_hash,
                created_at=self.now,
                last_seen_at=self.now,
                last_seen_block=self.block,
            ),
        )
        if resolution == OPEN:
            self.counts[
                "shortfall" if f.kind == ledger.SHORTFALL else "inflow_open"
            ] += 1
            log.warning(
                "chain %s: %s %s: %s of %d base units at #%d (%s)",
                self.cfg.name,
                address,
                asset,
                f.kind,
                f.amount,
                self.block,
                note,
            )
        if len(self.listed) < MAX_LISTED:
            self.listed.append(
                DifferenceItem(
                    address=address,
                    asset=asset,
                    block=self.block,
                    kind=f.kind,
                    resolution=resolution,
                    expected_base_units=str(f.expected),
                    actual_base_units=str(f.actual),
                    amount_base_units=str(f.amount),
                    payment_id=payment_id,
                    note=note,
                )
            )

    def _address(self, k: ledger.Key) -> str:
        return self.originals.get(k[0], k[0])

    def _asset(self, k: ledger.Key, payments: list[Any]) -> str:
        if k[1] is None:
            return self.cfg.native.symbol
        for p in payments:
            if p.token_address and p.token_address.lower() == k[1]:
                return str(p.asset)
        for symbol, t in self.cfg.tokens.items():
            if t.address.lower() == k[1]:
                return symbol
        return k[1][:16]

    def _token(self, k: ledger.Key, payments: list[Any]) -> str | None:
        if k[1] is None:
            return None
        for p in payments:
            if p.token_address and p.token_address.lower() == k[1]:
                return str(p.token_address)
        return k[1]

    def _resolve(self, d: ReconcileDifference) -> None:
        d.resolution, d.resolved_at = RESOLVED, self.now
        d.last_seen_at, d.last_seen_block = self.now, self.block
        self.counts["resolved"] += 1

    def _mark_reorged(self) -> None:
        for d in queries.vanished_credits(self.session, self.cfg.name):
            d.resolution, d.resolved_at = REORGED, self.now
            d.note = "a reorg removed the block this credit was at"
            self.counts["reorged"] += 1
