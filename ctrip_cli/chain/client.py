"""The `ChainClient` seam: only what jobs call, returning frozen domain types."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BlockHeader:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


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
    """A successful top-level transaction moving the native coin (`amount` in wei)."""

    tx_hash: str
    block_number: int
    block_hash: str
    from_address: str
    to_address: str
    amount: int

    @property
    def log_index(self) -> int:
        return -1  # native transfers have no log; -1 keeps (chain, tx, log) unique


class ChainClient(Protocol):
    """A connection to one chain's RPC endpoints (with failover)."""

    round_trips: int

    def chain_id(self) -> int: ...

    def check_chain_id(self) -> None: ...

    def checked_head(self) -> int:
        """The head, with the chain id checked (ChainIdMismatchError)."""
        ...

    def head(self) -> int: ...

    def block_header(self, number: int) -> BlockHeader: ...

    def block_headers(self, numbers: Sequence[int]) -> list[BlockHeader]: ...

    def block_hashes(self, numbers: Iterable[int]) -> dict[int, str | None]: ...

    def token_transfers(
        self,
        from_block: int,
        to_block: int,
        tokens: Sequence[str],
        recipients: Collection[str] | None,
    ) -> list[TokenTransfer]: ...

    def native_transfers(
        self, from_block: int, to_block: int, recipients: Collection[str]
    ) -> list[NativeTransfer]:
        """Successful transfers to `recipients` (lowercase addresses) in the range."""
        ...

    def close(self) -> None: ...
