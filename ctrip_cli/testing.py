"""Test doubles shipped with the package: `FakeChain`, an in-memory ChainClient with
blocks, transfers and forks, for fast tests of job logic (never the only test of a
chain path: those run on anvil)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from ctrip_cli.chain.client import BlockHeader, NativeTransfer, TokenTransfer
from ctrip_cli.errors import RpcRejectedError

ZERO_HASH = "0x" + "00" * 32
PAYER = "0x" + "ab" * 20


@dataclass
class _Block:
    header: BlockHeader
    tokens: list[TokenTransfer] = field(default_factory=list)
    native: list[NativeTransfer] = field(default_factory=list)


class FakeChain:
    """A chain in memory: `produce_blocks`, `add_transfer`, `produce_fork`."""

    def __init__(self, chain_id: int = 31337, *, blocks: int = 1) -> None:
        self.id = chain_id
        self.round_trips = 0
        self.lag_blocks = 0  # the node reports a head this far behind its tip
        self.log_queries: list[Collection[str] | None] = []
        self._salt = itertools.count()
        self._tx = itertools.count(1)
        self.blocks: list[_Block] = []
        self.produce_blocks(blocks)

    # -- building the chain --

    def _hash(self, *parts: object) -> str:
        text = ":".join(str(p) for p in (*parts, next(self._salt)))
        return "0x" + hashlib.sha256(text.encode()).hexdigest()

    def produce_blocks(self, n: int = 1) -> list[BlockHeader]:
        """Append `n` empty blocks; returns their headers."""
        out = []
        for _ in range(n):
            number = len(self.blocks)
            parent = self.blocks[-1].header.hash if self.blocks else ZERO_HASH
            header = BlockHeader(
                number, self._hash(number), parent, 1_700_000_000 + number
            )
            self.blocks.append(_Block(header))
            out.append(header)
        return out

    def add_transfer(
        self,
        to: str,
        amount: int,
        *,
        token: str | None = None,
        block: int | None = None,
    ) -> TokenTransfer | NativeTransfer:
        """Record a transfer in `block` (default: a new block) and return it."""
        if block is None:
            block = self.produce_blocks(1)[0].number
        b = self.blocks[block]
        tx_hash = self._hash("tx", next(self._tx))
        if token is None:
            n = NativeTransfer(tx_hash, block, b.header.hash, PAYER, to, amount)
            b.native.append(n)
            return n
        log_index = len(b.tokens)
        t = TokenTransfer(
            tx_hash, log_index, block, b.header.hash, token, PAYER, to, amount
        )
        b.tokens.append(t)
        return t

    def produce_fork(self, depth: int, *, keep_transfers: bool = False) -> None:
        """Replace the last `depth` blocks with new ones (transfers dropped, or moved)."""
        base = len(self.blocks) - depth
        orphaned, self.blocks = self.blocks[base:], self.blocks[:base]
        self.produce_blocks(depth)
        if keep_transfers:
            for old in orphaned:
                for t in old.tokens:
                    self.add_transfer(
                        t.to_address,
                        t.amount,
                        token=t.token_address,
                        block=old.header.number,
                    )
                for n in old.native:
                    self.add_transfer(n.to_address, n.amount, block=old.header.number)

    # -- ChainClient --

    def chain_id(self) -> int:
        return self.id

    def check_chain_id(self) -> None:
        self.round_trips += 1

    def checked_head(self) -> int:
        return self.head()

    def head(self) -> int:
        self.round_trips += 1
        return len(self.blocks) - 1 - self.lag_blocks

    def block_header(self, number: int) -> BlockHeader:
        return self.block_headers([number])[0]

    def block_headers(self, numbers: Sequence[int]) -> list[BlockHeader]:
        self.round_trips += 1
        if any(n >= len(self.blocks) for n in numbers):
            raise RpcRejectedError("block not found; the node is lagging")
        return [self.blocks[n].header for n in numbers]

    def block_hashes(self, numbers: Iterable[int]) -> dict[int, str | None]:
        self.round_trips += 1
        return {
            n: (self.blocks[n].header.hash if n < len(self.blocks) else None)
            for n in numbers
        }

    def token_transfers(
        self,
        from_block: int,
        to_block: int,
        tokens: Sequence[str],
        recipients: Collection[str] | None,
    ) -> list[TokenTransfer]:
        self.round_trips += 1
        self.log_queries.append(recipients)
        wanted = None if recipients is None else {r.lower() for r in recipients}
        lowered = {t.lower() for t in tokens}
        return [
            t
            for b in self.blocks[from_block : to_block + 1]
            for t in b.tokens
            if t.token_address.lower() in lowered
            and (wanted is None or t.to_address.lower() in wanted)
        ]

    def native_transfers(
        self, from_block: int, to_block: int, recipients: Collection[str]
    ) -> list[NativeTransfer]:
        self.round_trips += 1
        wanted = {r.lower() for r in recipients}
        return [
            n
            for b in self.blocks[from_block : to_block + 1]
            for n in b.native
            if n.to_address.lower() in wanted
        ]

    def close(self) -> None:
        pass
