"""Reading one block batch for the scan: headers, transfers to watched addresses, and
the checks that they belong to one chain (hashes, parent links, the tip read again).
Token logs come first; native receipts (the bulk) second, so they can be read while
the token transfers are being written.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from ctrip_cli.chain.client import (
    BlockHeader,
    ChainClient,
    NativeTransfer,
    TokenTransfer,
)
from ctrip_cli.config import ChainConfig, ScanSettings

log = logging.getLogger("ctrip.scan")
RETRIES_ON_MOVE = 3
Transfer = TokenTransfer | NativeTransfer


@dataclass(slots=True)
class Watch:
    """Addresses (lowercase) that may receive funds, loaded once per pass."""

    native: set[str] = field(default_factory=set)
    tokens: dict[str, str] = field(default_factory=dict)  # lowercase → checksummed
    token_payments: int = 0  # watched token payments
    # None: too many for recipient filters; read all Transfer logs of the configured
    # tokens and match them in the database (see README, "How it reads").
    token_recipients: set[str] | None = field(default_factory=set)


class ChainMoved(Exception):
    """The chain changed while a batch was read; the batch is read again."""


class Reorged(Exception):
    """The block before the batch is no longer canonical: the next pass rewinds."""


@dataclass(frozen=True, slots=True)
class Reader:
    chain: ChainClient
    cfg: ChainConfig
    settings: ScanSettings
    watch: Watch
    head: int

    def read_tokens(
        self, a: int, b: int, prev_hash: str | None
    ) -> tuple[list[BlockHeader], list[TokenTransfer]]:
        """Headers of [a, b], then its token transfers to watched addresses.

        Headers: the batch's first and last block and every block within
        `reorg_depth_blocks` of the head. Deeper blocks would need a fork deeper than
        the window, which the next pass reports as ReorgTooDeepError.

        Raises:
            Reorged: the block before `a` is no longer the one the scan continued from.
            ChainMoved: the chain changed while the batch was read.
        """
        numbers = sorted({a, b, *range(max(a, self.window), b + 1)})
        headers = self.chain.block_headers(numbers)
        _check_links(headers, prev_hash)
        found: list[TokenTransfer] = []
        watch, wanted = self.watch, self.watch.token_recipients
        if watch.token_payments:
            tokens = list(watch.tokens.values())
            found = self.chain.token_transfers(a, b, tokens, wanted)
            if wanted is not None:
                found = [t for t in found if t.to_address.lower() in wanted]
        _check_hashes(headers, found)
        return headers, found

    def read_native(
        self, a: int, b: int, headers: list[BlockHeader]
    ) -> list[NativeTransfer]:
        """Native transfers of [a, b], then the tip of the batch read again.

        Raises:
            ChainMoved: the chain changed since `headers` were read.
        """
        found = (
            self.chain.native_transfers(a, b, self.watch.native)
            if self.watch.native
            else []
        )
        _check_hashes(headers, found)
        if b >= self.window and self.chain.block_hashes([b]).get(b) != headers[-1].hash:
            raise ChainMoved
        return found

    @property
    def window(self) -> int:
        """The lowest block a fork within `reorg_depth_blocks` of the head can reach."""
        return self.head - self.cfg.reorg_depth_blocks + 1


def _check_hashes(headers: list[BlockHeader], found: Sequence[Transfer]) -> None:
    by_number = {h.number: h.hash for h in headers}
    if any(by_number.get(t.block_number, t.block_hash) != t.block_hash for t in found):
        raise ChainMoved


def _check_links(headers: list[BlockHeader], prev_hash: str | None) -> None:
    if prev_hash is not None and headers and headers[0].parent_hash != prev_hash:
        raise Reorged
    for parent, child in itertools.pairwise(headers):
        if child.number == parent.number + 1 and child.parent_hash != parent.hash:
            raise ChainMoved
