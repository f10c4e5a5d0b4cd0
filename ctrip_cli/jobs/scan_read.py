"""Reading one block batch for the scan: headers, transfers to watched addresses, and
the checks that they belong to one chain (hashes, parent links, blooms, the tip read
again).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from ctrip_cli.chain import parse
from ctrip_cli.chain.client import (
    BlockHeader,
    ChainClient,
    NativeTransfer,
    TokenTransfer,
    Transfers,
    Watched,
)
from ctrip_cli.config import ChainConfig, ScanSettings

log = logging.getLogger("ctrip.scan")
RETRIES_ON_MOVE = 3
Transfer = TokenTransfer | NativeTransfer
TRANSFER_TOPIC = parse.TRANSFER_TOPIC


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
    masks: dict[str, int] = field(default_factory=dict)  # bloom bits, per pass

    def read_headers(self, a: int, b: int, prev_hash: str | None) -> list[BlockHeader]:
        """Headers of [a, b]: the batch's first and last block and every block within
        `reorg_depth_blocks` of the head. Deeper blocks would need a fork deeper than
        the window, which the next pass reports as ReorgTooDeepError.

        Raises:
            Reorged: the block before `a` is no longer the one the scan continued from.
            ChainMoved: the chain changed while the batch was read.
        """
        numbers = sorted({a, b, *range(max(a, self.window), b + 1)})
        headers = self.chain.block_headers(numbers)
        _check_links(headers, prev_hash)
        return headers

    def read_transfers(self, a: int, b: int, headers: list[BlockHeader]) -> Transfers:
        """Transfers of [a, b] to watched addresses, checked against the headers.

        Raises:
            ChainMoved: the chain changed since `headers` were read, or an endpoint
                answered logs that the blocks' blooms contradict (read again).
        """
        watch = self.watch
        watched = Watched(
            native=watch.native,
            tokens=list(watch.tokens.values()) if watch.token_payments else [],
            token_recipients=watch.token_recipients,
        )
        if not watched.native and not watched.wants_tokens:
            found = Transfers()
        else:
            found = self.chain.transfers(a, b, watched)
        wanted = watch.token_recipients
        tokens = found.tokens
        if wanted is not None:
            tokens = [t for t in tokens if t.to_address.lower() in wanted]
        self._check_canonical(headers, [*tokens, *found.native], found.block_hashes)
        if "logs" in found.source and wanted:
            self._check_blooms(headers, tokens, watched)
        if b >= self.window and self.chain.block_hashes([b]).get(b) != headers[-1].hash:
            raise ChainMoved
        return Transfers(tokens, found.native, found.source)

    def _check_canonical(
        self,
        headers: list[BlockHeader],
        found: Sequence[Transfer],
        named: dict[int, str],
    ) -> None:
        """The block hashes the answers named are the canonical ones: checked against
        the headers read, and asked for where a transfer sits in a block inside the
        batch (no header read there; a forged hash would never confirm)."""
        canonical = {h.number: h.hash for h in headers}
        # Free to check where a header was read; elsewhere only where money was found
        # (one header call per such block, not per block).
        named = {n: h for n, h in named.items() if n in canonical}
        named.update({t.block_number: t.block_hash for t in found})
        missing = [n for n in named if n not in canonical]
        if missing:
            canonical.update(self.chain.block_hashes(missing))  # type: ignore[arg-type]
        if any(canonical.get(n) != h for n, h in named.items()):
            raise ChainMoved
        if any(canonical.get(t.block_number) != t.block_hash for t in found):
            raise ChainMoved

    def _check_blooms(
        self, headers: list[BlockHeader], found: list[TokenTransfer], watched: Watched
    ) -> None:
        """A block whose bloom admits a watched token Transfer while the logs came back
        without one is read again from its receipts (a lagging backend behind a load
        balancer answers eth_getLogs with [] for blocks it does not have yet)."""
        have = {t.block_number for t in found}
        suspects = [
            h.number
            for h in headers
            if h.logs_bloom is not None
            and h.number not in have
            and self._bloom_admits(h.logs_bloom, watched)
        ]
        for number in sorted(suspects, reverse=True)[:2]:
            check = self.chain.receipt_transfers(number, watched)
            if check is None or check.tokens:
                log.info(
                    "chain %s: logs of #%d contradict its bloom; reading again",
                    self.cfg.name,
                    number,
                )
                raise ChainMoved

    def _bloom_admits(self, bloom: int, watched: Watched) -> bool:
        if not self.masks:
            topic = bytes.fromhex(TRANSFER_TOPIC[2:])
            self.masks["topic"] = parse.bloom_bits(topic)
            for t in watched.tokens:
                self.masks["token:" + t.lower()] = parse.bloom_bits(
                    bytes.fromhex(t[2:])
                )
            for r in watched.token_recipients or ():
                word = bytes.fromhex(parse.address_topic(r)[2:])
                self.masks["to:" + r] = parse.bloom_bits(word)
        m = self.masks
        if not parse.bloom_admits(bloom, m["topic"]):
            return False
        if not any(
            parse.bloom_admits(bloom, v) for k, v in m.items() if k.startswith("token:")
        ):
            return False
        return any(
            parse.bloom_admits(bloom, v) for k, v in m.items() if k.startswith("to:")
        )

    @property
    def window(self) -> int:
        """The lowest block a fork within `reorg_depth_blocks` of the head can reach."""
        return self.head - self.cfg.reorg_depth_blocks + 1


def _check_links(headers: list[BlockHeader], prev_hash: str | None) -> None:
    if prev_hash is not None and headers and headers[0].parent_hash != prev_hash:
        raise Reorged
    for parent, child in itertools.pairwise(headers):
        if child.number == parent.number + 1 and child.parent_hash != parent.hash:
            raise ChainMoved
