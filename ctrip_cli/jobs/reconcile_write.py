"""The write of a reconcile pass: under the payments' locks, re-read their ledger,
credit inflows (balance transfers), record, update and resolve differences, move the
reconcile cursor, all in one transaction (see `jobs.reconcile`)."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from ctrip_cli.chain.client import BlockHeader
from ctrip_cli.config import ChainConfig, ScanSettings
from ctrip_cli.db import queries
from ctrip_cli.db.models import ReconcileDifference
from ctrip_cli.domain import ledger
from ctrip_cli.jobs import crediting

log = logging.getLogger("ctrip.reconcile")
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


@dataclass(slots=True)
class View:
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


def read_view(session: Session, chain: str, addresses: Sequence[str]) -> View:
    payments = queries.payments_at(session, chain, addresses)
    transfers = queries.ledger_transfers(session, [p.id for p in payments])
    return View(payments, transfers, queries.sweep_moves(session, chain, addresses))


def balance_tx_hash(chain: str, k: ledger.Key, block: int) -> str:
    """The key of a balance credit: one per (chain, address, asset, block), so a
    rerun at the same block inserts nothing new."""
    text = f"balance:{chain}:{k[0]}:{k[1] or ''}:{block}"
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


class Write:
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
            view = read_view(s, self.cfg.name, sorted(originals))
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
