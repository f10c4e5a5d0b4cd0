"""Reading one block batch for the scan: headers, transfers to watched addresses, and
the checks that they belong to one chain (hashes, parent links, the tip read again).
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field

from ctrip_cli.chain.client import (
    BlockHeader,
    ChainClient,
    NativeTransfer,
    TokenTransfer,
)
from ctrip_cli.config import ChainConfig, ScanSettings
from ctrip_cli.errors import ChainError

log = logging.getLogger("ctrip.scan")
RETRIES_ON_MOVE = 3
Transfer = TokenTransfer | NativeTransfer


@dataclass(slots=True)
class Watch:
    """Addresses (lowercase) that may receive funds, loaded once per pass."""

    native: set[str] = field(default_factory=set)
    tokens: dict[str, str] = field(default_factory=dict)  # lowercase → checksummed
    token_recipients: set[str] = field(default_factory=set)


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

    def read(
        self, a: int, b: int, prev_hash: str | None
    ) -> tuple[list[BlockHeader], list[Transfer]]:
        """Headers and watched transfers of [a, b], read again if the chain moved.

        Raises:
            Reorged: the block before `a` is no longer the one the scan continued from.
            ChainError: the chain kept moving, or the RPC endpoints failed.
        """
        for _ in range(RETRIES_ON_MOVE):
            try:
                return self._read_once(a, b, prev_hash)
            except ChainMoved:
                log.info(
                    "chain %s: the chain moved while #%d-#%d was read",
                    self.cfg.name,
                    a,
                    b,
                )
        raise ChainError(
            f"chain {self.cfg.name!r} kept reorganising while #{a:,}-#{b:,} was read; "
            "rerun the scan"
        )

    def _read_once(
        self, a: int, b: int, prev_hash: str | None
    ) -> tuple[list[BlockHeader], list[Transfer]]:
        """Headers, then transfers, then the tip again, checked against each other.

        Headers: the batch's first and last block and every block within
        `reorg_depth_blocks` of the head. Deeper blocks would need a fork deeper than
        the window, which the next pass reports as ReorgTooDeepError.
        """
        window = self.head - self.cfg.reorg_depth_blocks + 1
        numbers = sorted({a, b, *range(max(a, window), b + 1)})
        headers = self.chain.block_headers(numbers)
        _check_links(headers, prev_hash)
        found = self._transfers(a, b)
        by_number = {h.number: h.hash for h in headers}
        if any(
            by_number.get(t.block_number, t.block_hash) != t.block_hash for t in found
        ):
            raise ChainMoved
        if b >= window and self.chain.block_hashes([b]).get(b) != headers[-1].hash:
            raise ChainMoved
        return headers, found

    def _transfers(self, a: int, b: int) -> list[Transfer]:
        found: list[Transfer] = []
        watch = self.watch
        if watch.token_recipients:
            chunks = math.ceil(
                len(watch.token_recipients) / self.settings.address_chunk
            )
            # Past max_filter_chunks filters, one unfiltered query is cheaper (README).
            wanted = watch.token_recipients
            recipients = wanted if chunks <= self.settings.max_filter_chunks else None
            logs = self.chain.token_transfers(
                a, b, list(watch.tokens.values()), recipients
            )
            found.extend(t for t in logs if t.to_address.lower() in wanted)
        if watch.native:
            found.extend(self.chain.native_transfers(a, b, watch.native))
        return found


def _check_links(headers: list[BlockHeader], prev_hash: str | None) -> None:
    if prev_hash is not None and headers and headers[0].parent_hash != prev_hash:
        raise Reorged
    for parent, child in itertools.pairwise(headers):
        if child.number == parent.number + 1 and child.parent_hash != parent.hash:
            raise ChainMoved
