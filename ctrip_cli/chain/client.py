"""The `ChainClient` seam: only what jobs call, returning frozen domain types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BlockHeader:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


class ChainClient(Protocol):
    """A connection to one chain's RPC endpoints (with failover)."""

    def chain_id(self) -> int: ...

    def head(self) -> int: ...

    def block_header(self, number: int) -> BlockHeader: ...

    def close(self) -> None: ...
