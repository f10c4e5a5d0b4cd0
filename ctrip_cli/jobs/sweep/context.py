"""What one sweep pass works with: its fixed inputs (`Pass`), what it has read from the
chain (`ChainReads`, each value read at most once) and what it reports (`Tally`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from ctrip_cli.chain.client import ChainClient, Fees, Receipt
from ctrip_cli.chain.opstack import L1FeeParams
from ctrip_cli.chain.signer import KeyRing
from ctrip_cli.config import ChainConfig, SweepSettings

Hook = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One planned transaction, as `--dry-run` and `--json` show it."""

    kind: str
    asset: str
    from_address: str
    to_address: str
    amount: str
    amount_base_units: str
    fee: str  # in the native coin (for a token sweep: its gas at the max fee)
    fee_wei: str  # the most the transaction can cost, L1 data fee bound included
    payments: list[str]
    action: str
    l1_fee_wei: str = "0"  # the L1 data fee bound within fee_wei (OP Stack)
    # The most of fee_wei the chain may not charge, left on the sender: for a native
    # sweep, the dust bound of the deposit address ("0" for exact legacy pricing).
    dust_bound_wei: str = "0"


@dataclass(slots=True)
class ChainReads:
    """Chain values a pass reads once: fees, the native transfer's gas, nonces, the
    gas payer's balance, receipts of what is in flight, L1 fee parameters (now and at
    the blocks that mined its transactions)."""

    fees: dict[bool, Fees] = field(default_factory=dict)  # keyed by eip1559
    native_fees: Fees | None = None
    native_gas: int | None = None
    topup_gas: dict[str, int] = field(default_factory=dict)  # Arbitrum: per address
    node_nonces: dict[str, int] = field(default_factory=dict)
    next_nonces: dict[str, int] = field(default_factory=dict)
    receipts: dict[str, Receipt | None] = field(default_factory=dict)
    payer_balance_wei: int | None = None
    payer_spent_wei: int = 0  # reserved by this pass's top-ups
    l1_params: L1FeeParams | None = None
    l1_params_at: dict[int, L1FeeParams] = field(default_factory=dict)


@dataclass(slots=True)
class Tally:
    """What the pass did and what it reports."""

    counts: Counter[str] = field(default_factory=Counter)
    plan: list[PlanItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # the gas payer cannot fund these
    dust_wei: int = 0  # left on deposit addresses by the sweeps confirmed this pass


@dataclass(frozen=True, slots=True)
class Pass:
    """One pass's inputs; only `run` builds it."""

    session: Session
    rpc: ChainClient
    cfg: ChainConfig
    keys: KeyRing
    settings: SweepSettings
    now: datetime
    treasury: str
    head: int
    hook: Hook
    dry_run: bool
    tolerance_bps: int
    reads: ChainReads = field(default_factory=ChainReads)
    tally: Tally = field(default_factory=Tally)

    @property
    def chain(self) -> str:
        return self.cfg.name

    @property
    def payer(self) -> str:
        return self.keys.address(self.settings.gas_payer_path)

    @property
    def deepest_block(self) -> int:
        """The newest block whose transfers a reorg can no longer take back."""
        return self.head - max(self.cfg.confirmations, 1) + 1

    def commit(self) -> None:
        """Commit the work so far; also ends read transactions, since a rollback would
        expire the loaded rows and SQLite's BEGIN IMMEDIATE should not span an RPC
        call."""
        self.session.commit()
