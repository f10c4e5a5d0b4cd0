"""The `ChainClient` seam: everything the passes ask of a chain, returning frozen domain
types. `chain.evm.EvmChain` implements it over JSON-RPC, `testing.FakeChain` in memory."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from ctrip_cli.chain.opstack import L1FeeParams


@dataclass(frozen=True, slots=True)
class BlockHeader:
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    logs_bloom: int | None = None  # the 2048-bit bloom as an int, when the node sent it


@dataclass(frozen=True, slots=True)
class TokenTransfer:
    """An ERC-20 `Transfer` log; addresses are checksummed, `amount` in base units."""

    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    token_address: str
    from_address: str
    to_address: str
    amount: int


@dataclass(frozen=True, slots=True)
class NativeTransfer:
    """Native coin moved (`amount` in wei) by a successful top-level transaction, or,
    with `trace_position`, by an internal call at that position of its trace."""

    tx_hash: str
    block_number: int
    block_hash: str
    from_address: str
    to_address: str
    amount: int
    trace_position: int | None = None  # >= 1: a frame below the top-level call

    @property
    def log_index(self) -> int:
        # Native transfers have no log: -1 is the top-level transfer, -(1000 + n)
        # the internal one at trace position n (chain/traces.py); logs are >= 0, so
        # (chain, tx, log index) stays unique.
        if self.trace_position is None:
            return -1
        return -(1000 + self.trace_position)


@dataclass(frozen=True, slots=True)
class Watched:
    """What a scan looks for: lowercase recipient addresses and token contracts.

    `token_recipients` None means "too many to filter by": every Transfer of the
    configured tokens is returned and matched in the database.
    """

    native: Collection[str] = frozenset()
    tokens: Sequence[str] = ()  # checksummed token contract addresses
    token_recipients: Collection[str] | None = frozenset()

    @property
    def wants_tokens(self) -> bool:
        return bool(self.tokens) and (
            self.token_recipients is None or bool(self.token_recipients)
        )


@dataclass(frozen=True, slots=True)
class Transfers:
    """The transfers of a block range, and how they were read (for the summary)."""

    tokens: list[TokenTransfer] = field(default_factory=list)
    native: list[NativeTransfer] = field(default_factory=list)
    source: str = ""  # "receipts", "blocks", "logs" or a combination
    # Block hashes the answers named (receipts name their block), to check against
    # the canonical chain.
    block_hashes: dict[int, str] = field(default_factory=dict)
    # Transactions per block, where the read saw whole blocks (traces must cover them).
    tx_counts: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Fees:
    """EIP-1559 fees, or a legacy gas price when `max_priority_fee_per_gas` is None."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int | None = None

    @property
    def legacy(self) -> bool:
        return self.max_priority_fee_per_gas is None

    def cost_wei(self, gas_limit: int) -> int:
        """The most this transaction can cost (exactly its cost for legacy pricing)."""
        return gas_limit * self.max_fee_per_gas

    def bumped(self, bump_bps: int, floor: Fees) -> Fees:
        """Replacement fees: both fees raised by at least `bump_bps`, and never below `floor`."""
        max_fee = max(_bump(self.max_fee_per_gas, bump_bps), floor.max_fee_per_gas)
        if self.max_priority_fee_per_gas is None:
            return Fees(max_fee)
        tip = max(
            _bump(self.max_priority_fee_per_gas, bump_bps),
            floor.max_priority_fee_per_gas or 0,
        )
        return Fees(max(max_fee, tip), tip)


def _bump(value: int, bps: int) -> int:
    # ceiling, so a +10% floor is never missed
    return -(-value * (10_000 + bps) // 10_000)


@dataclass(frozen=True, slots=True)
class BalanceQuery:
    """One balance to read: the native coin of `address`, or its `token` balance."""

    address: str
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Balances:
    """Balances read at one block, in the order asked; None where a read failed
    (a token whose balanceOf reverts or answers garbage). `method` says how they
    were read: "multicall3" or "eth_getBalance+eth_call"."""

    values: list[int | None]
    method: str


@dataclass(frozen=True, slots=True)
class Log:
    address: str
    topics: tuple[str, ...]
    data: str


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: str
    status: int
    block_number: int
    gas_used: int
    effective_gas_price: int
    logs: tuple[Log, ...]
    l1_fee_wei: int | None = None  # the OP Stack L1 data fee, where the node reports it

    @property
    def fee_paid_wei(self) -> int:
        """Gas × price; an L1 data fee comes on top (`l1_fee_wei`)."""
        return self.gas_used * self.effective_gas_price


class SendOutcome(StrEnum):
    SENT = "sent"
    KNOWN = "known"  # the node already has it: nothing to do
    NONCE_USED = "nonce used"  # mined already (ours or another attempt): check receipts
    # a pending attempt with this nonce pays more, or the fee is below the base fee:
    # either way a fee-bump replacement follows once the attempt counts as stuck
    UNDERPRICED = "underpriced"
    NO_FUNDS = "insufficient funds"


@dataclass(frozen=True, slots=True)
class EndpointProbe:
    """One endpoint as `status` shows it: never its URL (it may hold an API key)."""

    label: str
    ok: bool
    head: int | None = None
    head_timestamp: int | None = None
    latency_ms: int | None = None
    error: str | None = None
    limits: dict[str, object] = field(default_factory=dict)


class ChainClient(Protocol):
    """A connection to one chain's RPC endpoints (with failover)."""

    round_trips: int

    # -- reads for scan and confirm --

    def checked_head(self) -> int:
        """The head, with the chain id checked (ChainIdMismatchError)."""
        ...

    def head(self) -> int: ...

    def block_headers(self, numbers: Sequence[int]) -> list[BlockHeader]: ...

    def block_hashes(self, numbers: Iterable[int]) -> dict[int, str | None]: ...

    def transfers(self, from_block: int, to_block: int, watched: Watched) -> Transfers:
        """Token and native transfers of [from_block, to_block] to `watched`."""
        ...

    def receipt_transfers(self, number: int, watched: Watched) -> Transfers | None:
        """One block's token transfers read another way (None: cannot tell)."""
        ...

    # -- reads and writes for sweep --

    def balance(self, address: str, block: int | str = "latest") -> int: ...

    def token_balance(
        self, token: str, address: str, block: int | str = "latest"
    ) -> int: ...

    def nonce(self, address: str, block: str = "pending") -> int: ...

    # -- reads for reconcile --

    def balances_at(self, queries: Sequence[BalanceQuery], block: int) -> Balances:
        """Native and token balances at `block` (Multicall3 where deployed)."""
        ...

    def fees(self, *, eip1559: bool) -> Fees: ...

    def gas_price(self) -> Fees: ...

    def l1_fee_params(self, block: int | str = "latest") -> L1FeeParams:
        """The OP Stack L1Block fee parameters at `block` (fee_model op-stack)."""
        ...

    def estimate_gas(
        self, *, sender: str, to: str, value: int = 0, data: str = "0x"
    ) -> int: ...

    def send_raw(self, raw: str) -> SendOutcome: ...

    def is_known(self, tx_hash: str) -> bool: ...

    def receipts(self, tx_hashes: Sequence[str]) -> dict[str, Receipt | None]: ...

    # -- status --

    def probe(self, *, timeout_s: float) -> list[EndpointProbe]: ...

    def close(self) -> None: ...
