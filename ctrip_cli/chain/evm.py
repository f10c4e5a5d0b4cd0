"""`EvmChain`: the ChainClient over the JSON-RPC transport.

It picks the cheapest way to read each block range (whole blocks' receipts, which also
carry every token Transfer log, or full blocks plus eth_getLogs), falls back where an
endpoint lacks a method or refuses a query, and validates every answer (`parse`).
Node error texts are matched in `limits.py` and here only.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from ctrip_cli.chain import balances, opstack, parse, traces, tx
from ctrip_cli.chain.client import (
    BalanceQuery,
    Balances,
    BlockHeader,
    EndpointProbe,
    Fees,
    NativeTransfer,
    Receipt,
    SendOutcome,
    TokenTransfer,
    Transfers,
    Watched,
)
from ctrip_cli.chain.limits import EndpointLimits, logs_range_hint
from ctrip_cli.chain.opstack import L1FeeParams
from ctrip_cli.chain.rpc import (
    Call,
    RpcMethodUnsupportedError,
    RpcTooManyResultsError,
    RpcTransport,
)
from ctrip_cli.config import ChainConfig
from ctrip_cli.errors import ChainIdMismatchError, RpcRejectedError

log = logging.getLogger("ctrip.rpc")
TRANSFER_TOPIC = parse.TRANSFER_TOPIC
RECEIPTS, BLOCKS = "receipts", "blocks"
# Receipts are read while they weigh at most this many times a full block: a full-block
# read also asks eth_getLogs for the tokens and the matched receipts, and one read of
# the whole range is fewer round trips (mainnet-shaped blocks weigh ~3.8x: blocks win).
RECEIPTS_PREMIUM = 2.5

_REJECTIONS = (
    # geth core/txpool/errors.go and legacypool; anvil and Erigon word them alike.
    ("already known", SendOutcome.KNOWN),
    ("already imported", SendOutcome.KNOWN),
    ("known transaction", SendOutcome.KNOWN),
    ("alreadyknown", SendOutcome.KNOWN),
    ("nonce too low", SendOutcome.NONCE_USED),
    ("replacement transaction underpriced", SendOutcome.UNDERPRICED),
    ("underpriced", SendOutcome.UNDERPRICED),
    ("less than block base fee", SendOutcome.UNDERPRICED),  # geth, anvil: fee cap
    ("insufficient funds", SendOutcome.NO_FUNDS),
)


class EvmChain:
    """One chain's endpoints as a ChainClient."""

    def __init__(self, cfg: ChainConfig, rpc: RpcTransport) -> None:
        self.cfg = cfg
        self.rpc = rpc
        self.address_chunk = 1_000
        self._fjord: bool | None = None  # read with the first L1 fee parameters

    @classmethod
    def open(
        cls,
        cfg: ChainConfig,
        *,
        limits: dict[str, EndpointLimits] | None = None,
        **kw: Any,
    ) -> EvmChain:
        return cls(cfg, RpcTransport(cfg, limits=limits, **kw))

    @property
    def round_trips(self) -> int:
        return self.rpc.round_trips

    def close(self) -> None:
        self.rpc.close()

    # -- answers --

    def _parsed(self, method: str, fn: Any, *args: Any) -> Any:
        """`fn(*args)` over a node answer; a malformed one names the endpoint."""
        try:
            return fn(*args)
        except (
            parse.Malformed,
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
        ) as exc:
            detail = (
                str(exc) if isinstance(exc, parse.Malformed) else type(exc).__name__
            )
            raise RpcRejectedError(
                f"{method}: {self.rpc.preferred.label} sent a malformed answer ({detail})"
            ) from None

    # -- chain basics --

    def chain_id(self) -> int:
        return int(
            self._parsed("eth_chainId", parse.quantity, self.rpc.call("eth_chainId"))
        )

    def check_chain_id(self) -> None:
        """Raises ChainIdMismatchError when the endpoint serves another chain."""
        self._expect_chain_id(self.chain_id())

    def checked_head(self) -> int:
        """The head, with the chain id checked in the same round trip.

        Raises:
            ChainIdMismatchError: the endpoint serves another chain.
        """
        chain_id, head = self.rpc.batch([("eth_chainId", ()), ("eth_blockNumber", ())])
        self._expect_chain_id(self._parsed("eth_chainId", parse.quantity, chain_id))
        return int(self._parsed("eth_blockNumber", parse.quantity, head))

    def _expect_chain_id(self, actual: int) -> None:
        if actual != self.cfg.chain_id:
            raise ChainIdMismatchError(
                f"chain {self.cfg.name!r}: the RPC endpoint serves chain id {actual}, "
                f"chains.yaml says {self.cfg.chain_id}; fix rpc_urls or chain_id"
            )

    def head(self) -> int:
        return int(
            self._parsed(
                "eth_blockNumber", parse.quantity, self.rpc.call("eth_blockNumber")
            )
        )

    def block_header(self, number: int) -> BlockHeader:
        """Raises RpcRejectedError when the node does not have the block."""
        (header,) = self.block_headers([number])
        return header

    def block_headers(self, numbers: Sequence[int]) -> list[BlockHeader]:
        """Headers of `numbers` (POA extra data is never parsed).

        Raises:
            RpcRejectedError: the node lacks one of the blocks (it is lagging).
        """
        blocks = self.rpc.batch(
            [("eth_getBlockByNumber", (hex(n), False)) for n in numbers]
        )
        out = []
        for n, block in zip(numbers, blocks, strict=True):
            if block is None:
                raise RpcRejectedError(f"block #{n:,} not found; the node is lagging")
            out.append(self._header_of(n, block))
        return out

    def _header_of(self, n: int, block: Any) -> BlockHeader:
        """The header of block `n`; an answer for another block is refused."""
        header: BlockHeader = self._parsed("eth_getBlockByNumber", parse.header, block)
        if header.number != n:
            raise RpcRejectedError(
                f"eth_getBlockByNumber: {self.rpc.preferred.label} answered block "
                f"#{header.number:,} for #{n:,}"
            )
        return header

    def block_hashes(self, numbers: Iterable[int]) -> dict[int, str | None]:
        """Canonical hash of each block number now (None where the node lacks it)."""
        nums = sorted(set(numbers))
        blocks = self.rpc.batch(
            [("eth_getBlockByNumber", (hex(n), False)) for n in nums]
        )
        return {
            n: self._header_of(n, b).hash if b else None
            for n, b in zip(nums, blocks, strict=True)
        }

    # -- transfers --

    def transfers(self, from_block: int, to_block: int, watched: Watched) -> Transfers:
        """Token and native transfers of the range to `watched`, with the native coin
        forwarded by contracts where the chain's `native_internal` reads traces.

        Raises:
            TracesUnavailableError: `native_internal: traces` on an endpoint without.
            RpcUnavailableError, RpcRejectedError: as `RpcTransport.batch`.
        """
        found = self._top_level_transfers(from_block, to_block, watched)
        if not watched.native or self.cfg.native_internal not in ("auto", "traces"):
            return found
        internal = traces.internal_transfers(
            self.rpc,
            range(from_block, to_block + 1),
            watched.native,
            block_hashes=self.block_hashes,
            chain=self.cfg.name,
            required=self.cfg.native_internal == "traces",
            tx_counts=found.tx_counts,
        )
        if internal is None:
            return found
        source = "+".join(s for s in (found.source, "traces") if s)
        return Transfers(
            found.tokens,
            [*found.native, *internal],
            source,
            found.block_hashes,
            found.tx_counts,
        )

    def _top_level_transfers(
        self, from_block: int, to_block: int, watched: Watched
    ) -> Transfers:
        """Token and native transfers of the range to `watched`.

        With native recipients, receipts are read when they are the cheaper read (they
        carry the token logs too, so eth_getLogs is not asked); otherwise full blocks,
        and the token logs by eth_getLogs. An endpoint that refuses eth_getLogs gets
        its token transfers from receipts.

        Raises:
            RpcUnavailableError, RpcRejectedError: as `RpcTransport.batch`.
        """
        numbers = range(from_block, to_block + 1)
        if watched.native and self.native_read(to_block) == RECEIPTS:
            try:
                return self._by_receipts(numbers, watched)
            except RpcMethodUnsupportedError:
                log.info(
                    "chain %s: no eth_getBlockReceipts; reading full blocks",
                    self.cfg.name,
                )
        tokens: list[TokenTransfer] = []
        source = []
        if watched.wants_tokens:
            try:
                tokens = self.token_transfers(
                    from_block, to_block, watched.tokens, watched.token_recipients
                )
                source.append("logs")
            except (
                RpcMethodUnsupportedError
            ):  # eth_getLogs refused: receipts carry them
                only_tokens = Watched((), watched.tokens, watched.token_recipients)
                return self._merge(
                    self._by_receipts(numbers, only_tokens),
                    self._native_by_blocks(numbers, watched.native),
                )
        counts: dict[int, int] = {}
        native = (
            self._native_by_blocks(numbers, watched.native, counts)
            if watched.native
            else []
        )
        if watched.native:
            source.append(BLOCKS)
        return Transfers(tokens, native, "+".join(source), tx_counts=counts)

    def receipt_transfers(self, number: int, watched: Watched) -> Transfers | None:
        """Token transfers of one block to `watched`, read another way than the logs
        were (its receipts; unfiltered logs where receipts are missing); None when the
        endpoint cannot show the block (it lags) or cannot tell."""
        only_tokens = Watched((), watched.tokens, watched.token_recipients)
        try:
            return self._by_receipts(range(number, number + 1), only_tokens)
        except RpcMethodUnsupportedError:
            pass
        except RpcRejectedError:
            return None
        every = self.token_transfers(number, number, watched.tokens, None)
        if not every:
            return None
        wanted = watched.token_recipients
        return Transfers(
            [t for t in every if wanted is None or t.to_address.lower() in wanted],
            source="logs",
        )

    @staticmethod
    def _merge(a: Transfers, native: list[NativeTransfer]) -> Transfers:
        return Transfers(
            a.tokens,
            native,
            a.source + ("+blocks" if native else ""),
            a.block_hashes,
            a.tx_counts,
        )

    def native_read(self, probe_block: int) -> str:
        """`receipts` or `blocks`: as configured, or (auto) the one measured cheaper."""
        lim = self.rpc.preferred.limits
        if "eth_getBlockReceipts" in lim.unsupported:
            return BLOCKS
        if self.cfg.native_read != "auto":
            return self.cfg.native_read
        per = lim.bytes_per_call
        receipts, blocks = (
            per.get("eth_getBlockReceipts"),
            per.get("eth_getBlockByNumber/full"),
        )
        if receipts is None or blocks is None:
            self._sample(probe_block)
            receipts = per.get("eth_getBlockReceipts")
            blocks = per.get("eth_getBlockByNumber/full")
            if receipts is None:
                return BLOCKS
        # Full blocks need the matched receipts too, and eth_getLogs for the tokens.
        return (
            RECEIPTS
            if blocks is None or receipts <= blocks * RECEIPTS_PREMIUM
            else BLOCKS
        )

    def _sample(self, number: int) -> None:
        """Read one block both ways, so the transport measures what each costs."""
        for call in (
            ("eth_getBlockReceipts", (hex(number),)),
            ("eth_getBlockByNumber", (hex(number), True)),
        ):
            try:
                self.rpc.call(call[0], *call[1])
            except RpcRejectedError:
                continue

    def _by_receipts(self, numbers: range, watched: Watched) -> Transfers:
        per_block = self.rpc.batch(
            [("eth_getBlockReceipts", (hex(n),)) for n in numbers]
        )
        matched: list[dict[str, Any]] = []
        tokens: list[TokenTransfer] = []
        want_tokens = watched.wants_tokens
        token_set = {t.lower() for t in watched.tokens}
        recipients = watched.token_recipients
        hashes: dict[int, str] = {}
        counts: dict[int, int] = {}
        empty: list[int] = []
        for n, receipts in zip(numbers, per_block, strict=True):
            if receipts is None:
                raise RpcRejectedError(f"block #{n:,} not found; the node is lagging")
            if not isinstance(receipts, list):
                raise RpcRejectedError(
                    f"eth_getBlockReceipts: {self.rpc.preferred.label} sent a malformed answer"
                )
            counts[n] = len(receipts)
            seen = self._parsed("eth_getBlockReceipts", _receipts_block, receipts, n)
            if seen is None:
                empty.append(n)
            else:
                hashes[n] = seen
            for r in receipts:
                if watched.native and self._parsed(
                    "eth_getBlockReceipts", parse.receipt_pays, r, watched.native
                ):
                    matched.append(r)
                if want_tokens and r.get("status") == "0x1":
                    tokens.extend(self._receipt_tokens(r, token_set, recipients))
        self._check_empty(empty)
        txs = self.rpc.batch(
            [("eth_getTransactionByHash", (r["transactionHash"],)) for r in matched]
        )
        native = [
            t
            for r, txn in zip(matched, txs, strict=True)
            if (
                t := self._parsed(
                    "eth_getTransactionByHash", parse.native_transfer, txn, r
                )
            )
        ]
        return Transfers(tokens, native, RECEIPTS, hashes, counts)

    def _check_empty(self, numbers: list[int]) -> None:
        """Blocks answered with no receipts must hold no transactions (a backend that
        lacks a block may answer `[]` for it)."""
        if not numbers:
            return
        counts = self.rpc.batch(
            [("eth_getBlockTransactionCountByNumber", (hex(n),)) for n in numbers]
        )
        for n, count in zip(numbers, counts, strict=True):
            held = (
                1
                if count is None
                else self._parsed(
                    "eth_getBlockTransactionCountByNumber", parse.quantity, count
                )
            )
            if held:
                raise RpcRejectedError(
                    f"eth_getBlockReceipts: {self.rpc.preferred.label} answered no "
                    f"receipts for block #{n:,}, which holds transactions (a lagging "
                    "backend?); rerun the scan"
                )

    def _receipt_tokens(
        self,
        receipt: dict[str, Any],
        tokens: set[str],
        recipients: Collection[str] | None,
    ) -> list[TokenTransfer]:
        out = []
        for entry in receipt.get("logs") or ():
            if (
                not isinstance(entry, dict)
                or str(entry.get("address", "")).lower() not in tokens
            ):
                continue
            topics = entry.get("topics")
            if recipients is not None and (
                not isinstance(topics, list)
                or len(topics) != 3
                or "0x" + str(topics[2])[-40:].lower() not in recipients
            ):
                continue
            t = self._parsed("eth_getBlockReceipts", parse.token_transfer, entry)
            if t is not None:
                out.append(t)
        return out

    def _native_by_blocks(
        self,
        numbers: range,
        wanted: Collection[str],
        counts: dict[int, int] | None = None,
    ) -> list[NativeTransfer]:
        if not wanted:
            return []
        blocks = self.rpc.batch(
            [("eth_getBlockByNumber", (hex(n), True)) for n in numbers]
        )
        candidates: list[dict[str, Any]] = []
        for n, block in zip(numbers, blocks, strict=True):
            if block is None:
                raise RpcRejectedError(f"block #{n:,} not found; the node is lagging")
            txs = self._parsed(
                "eth_getBlockByNumber", lambda b: b["transactions"], block
            )
            if counts is not None and isinstance(txs, list):
                counts[n] = len(txs)
            candidates.extend(
                t
                for t in txs
                if self._parsed("eth_getBlockByNumber", parse.tx_pays, t, wanted)
            )
        receipts = self.rpc.batch(
            [("eth_getTransactionReceipt", (t["hash"],)) for t in candidates]
        )
        return [
            t
            for txn, r in zip(candidates, receipts, strict=True)
            if (
                t := self._parsed(
                    "eth_getTransactionReceipt", parse.native_transfer, txn, r
                )
            )
        ]

    def token_transfers(
        self,
        from_block: int,
        to_block: int,
        tokens: Sequence[str],
        recipients: Collection[str] | None,
    ) -> list[TokenTransfer]:
        """ERC-20 Transfer logs of `tokens` in the range, to `recipients` (None: to anyone).

        The recipient filter is split into chunks of `address_chunk` topics; ranges are
        cut to the endpoint's learnt eth_getLogs cap.

        Raises:
            RpcMethodUnsupportedError: the endpoint refuses eth_getLogs altogether.
            RpcUnavailableError, RpcRejectedError: as `RpcTransport.batch`.
        """
        if not tokens or (recipients is not None and not recipients):
            return []
        if self.rpc.preferred.limits.logs_refused:
            raise RpcMethodUnsupportedError("eth_getLogs: refused by this endpoint")
        topic_sets: list[list[str] | None]
        if recipients is None:
            topic_sets = [None]
        else:
            words = sorted(parse.address_topic(a) for a in recipients)
            chunk = self.address_chunk
            topic_sets = [words[i : i + chunk] for i in range(0, len(words), chunk)]
        base = [
            {
                "address": list(tokens),
                "topics": [TRANSFER_TOPIC] if t is None else [TRANSFER_TOPIC, None, t],
            }
            for t in topic_sets
        ]
        logs = self._logs(base, from_block, to_block)
        out = []
        for entry in logs:
            if isinstance(entry, dict) and entry.get("removed"):
                continue
            t = self._parsed("eth_getLogs", parse.token_transfer, entry)
            if t is not None and from_block <= t.block_number <= to_block:
                out.append(t)
        return out

    def _logs(self, base: list[dict[str, Any]], lo: int, hi: int) -> list[Any]:
        """eth_getLogs of each filter over [lo, hi], in windows the endpoint accepts."""
        lim = self.rpc.preferred.limits
        span = lim.logs_max_range or (hi - lo + 1)
        work = [
            (f, a, min(a + span - 1, hi)) for f in base for a in range(lo, hi + 1, span)
        ]
        out: list[Any] = []
        refusals: dict[tuple[int, int], int] = {}
        while work:
            calls: list[Call] = [
                ("eth_getLogs", ({**f, "fromBlock": hex(a), "toBlock": hex(b)},))
                for f, a, b in work
            ]
            results = self.rpc.settle(calls)
            again = []
            for (f, a, b), result in zip(work, results, strict=True):
                if isinstance(result, RpcTooManyResultsError):
                    refusals[(a, b)] = refusals.get((a, b), 0) + 1
                    again.extend(self._split(f, a, b, str(result), refusals[(a, b)]))
                elif isinstance(result, RpcRejectedError):
                    raise result
                elif isinstance(result, list):
                    out.extend(result)
                else:
                    raise RpcRejectedError(
                        f"eth_getLogs: {self.rpc.preferred.label} sent a malformed answer"
                    )
            work = again
        return out

    def _split(
        self, f: dict[str, Any], a: int, b: int, message: str, refused: int
    ) -> list[tuple[dict[str, Any], int, int]]:
        """A refused window, cut to the size the refusal suggests (or halved)."""
        lim = self.rpc.preferred.limits
        asked = b - a + 1
        if asked == 1 and refused < 3 and "limit exceeded" in message.lower():
            # "limit exceeded" is also how gateways word a rate limit: wait, ask again.
            self.rpc.rate_wait(self.rpc.preferred, None)
            return [(f, a, b)]
        if asked == 1:
            lim.logs_refused = True  # BNB Chain's public endpoints: "limit exceeded"
            self.rpc.limits_changed = True
            log.warning(
                "chain %s: %s refuses eth_getLogs; reading receipts",
                self.cfg.name,
                self.rpc.preferred.label,
            )
            raise RpcMethodUnsupportedError(f"eth_getLogs: refused ({message})")
        span = logs_range_hint(message, asked) or max(asked // 2, 1)
        if lim.logs_max_range is None or span < lim.logs_max_range:
            lim.logs_max_range = span
            self.rpc.limits_changed = True
        return [(f, x, min(x + span - 1, b)) for x in range(a, b + 1, span)]

    # -- accounts and transactions (sweep) --

    def balance(self, address: str, block: int | str = "latest") -> int:
        """Native balance in wei."""
        return self._quantity("eth_getBalance", address, _tag(block))

    def token_balance(
        self, token: str, address: str, block: int | str = "latest"
    ) -> int:
        """ERC-20 `balanceOf(address)` in base units."""
        result = self.rpc.call(
            "eth_call", {"to": token, "data": tx.balance_of_data(address)}, _tag(block)
        )
        if result in (None, "0x"):
            return 0
        return int(
            self._parsed("eth_call", lambda r: int(parse.data(r)[:66], 16), result)
        )

    def balances_at(self, queries: Sequence[BalanceQuery], block: int) -> Balances:
        """Native and token balances at `block`, through the chain's `multicall3`
        where it has code at that block, else batched eth_getBalance / eth_call.

        Raises:
            RpcRejectedError: the node cannot read the block's state, or answered
                garbage.
            RpcUnavailableError: as `RpcTransport.batch`.
        """
        return balances.read(self.rpc, queries, block, multicall=self.cfg.multicall3)

    def nonce(self, address: str, block: str = "pending") -> int:
        """The account's next nonce as the node sees it (`pending` includes the mempool)."""
        return self._quantity("eth_getTransactionCount", address, block)

    def fees(self, *, eip1559: bool) -> Fees:
        """Current fees: 2 × base fee + tip for EIP-1559, else the node's gas price;
        never below the chain's `min_priority_fee_wei` / `min_gas_price_wei`."""
        if not eip1559:
            return self.gas_price()
        block = self.rpc.call("eth_getBlockByNumber", "latest", False)
        base = self._parsed(
            "eth_getBlockByNumber",
            lambda b: parse.quantity(b.get("baseFeePerGas") or "0x0"),
            block,
        )
        try:
            tip = self._quantity("eth_maxPriorityFeePerGas")
        except RpcRejectedError:
            tip = max(self.gas_price().max_fee_per_gas - base, 0)
        min_price = self.cfg.min_gas_price_wei or 0
        # The effective price is base + tip: a minimum price is met through the tip.
        tip = max(tip, self.cfg.min_priority_fee_wei or 0, min_price - base)
        return Fees(max(2 * base + tip, min_price), tip)

    def gas_price(self) -> Fees:
        """The node's suggested gas price for type-0 transactions, never below the
        chain's `min_gas_price_wei`."""
        price = self._quantity("eth_gasPrice")
        return Fees(max(price, self.cfg.min_gas_price_wei or 0))

    def l1_fee_params(self, block: int | str = "latest") -> L1FeeParams:
        """The L1Block predeploy's fee parameters at `block` (OP Stack), read from its
        storage in one batch; whether the chain prices with Fjord is asked once.

        Raises:
            RpcUnavailableError, RpcRejectedError: as `RpcTransport.batch`.
        """
        tag = _tag(block)
        calls: list[Call] = [
            ("eth_getStorageAt", (opstack.L1_BLOCK, hex(slot), tag))
            for slot in opstack.SLOTS
        ]
        if self._fjord is None:
            oracle = {"to": opstack.GAS_PRICE_ORACLE, "data": opstack.IS_FJORD_CALL}
            calls.append(("eth_call", (oracle, tag)))
        answers = self.rpc.settle(calls)
        if self._fjord is None:
            self._fjord = _is_fjord(answers.pop())
        words = {}
        for slot, word in zip(opstack.SLOTS, answers, strict=True):
            if isinstance(word, RpcRejectedError):
                raise word
            words[slot] = int(self._parsed("eth_getStorageAt", parse.quantity, word))
        return opstack.L1FeeParams.from_slots(words, fjord=self._fjord)

    def estimate_gas(
        self, *, sender: str, to: str, value: int = 0, data: str = "0x"
    ) -> int:
        """eth_estimateGas without a gas price, so the sender needs no balance for it."""
        call = {"from": sender, "to": to, "value": hex(value), "data": data}
        try:
            return self._quantity("eth_estimateGas", call)
        except RpcRejectedError as exc:
            if "insufficient funds" not in str(exc).lower():
                raise
        # Some OP-stack nodes (anvil --network optimism) charge the L1 data fee of a
        # call with data even without a gas price: a token sweep's deposit address
        # holds no coin yet. Estimate it as if it held some (a state override).
        funded = {sender: {"balance": hex(2**128)}}
        return self._quantity("eth_estimateGas", call, "latest", funded)

    def send_raw(self, raw: str) -> SendOutcome:
        """Broadcast stored bytes; a node that already has them is not an error.

        Raises:
            RpcUnavailableError: no endpoint answered (the bytes stay stored; rerun).
            RpcRejectedError: the node refused the transaction for another reason.
        """
        try:
            self.rpc.call("eth_sendRawTransaction", raw)
        except RpcRejectedError as exc:
            text = str(exc).lower()
            for needle, outcome in _REJECTIONS:
                if needle in text:
                    return outcome
            raise
        return SendOutcome.SENT

    def is_known(self, tx_hash: str) -> bool:
        """Whether the node knows the transaction (pending or mined)."""
        return self.rpc.call("eth_getTransactionByHash", tx_hash) is not None

    def receipts(self, tx_hashes: Sequence[str]) -> dict[str, Receipt | None]:
        """Receipts of many transactions (None while one is not mined)."""
        raw = self.rpc.batch([("eth_getTransactionReceipt", (h,)) for h in tx_hashes])
        return {
            h: self._parsed("eth_getTransactionReceipt", tx.parse_receipt, h, r)
            for h, r in zip(tx_hashes, raw, strict=True)
        }

    def _quantity(self, method: str, *params: Any) -> int:
        return int(self._parsed(method, parse.quantity, self.rpc.call(method, *params)))

    # -- status --

    def probe(self, *, timeout_s: float) -> list[EndpointProbe]:
        """Each endpoint on its own: chain id, latest block, latency, learnt limits."""
        out = []
        for ep in self.rpc.endpoints:
            single = self.cfg.model_copy(
                update={"rpc_urls": [self.cfg.rpc_urls[ep.index - 1]]}
            )
            one = EvmChain(
                single,
                RpcTransport(
                    single, timeout_s=timeout_s, attempts=1, limits={ep.key: ep.limits}
                ),
            )
            label = probe_label(ep.url, ep.index)
            try:
                actual = one.chain_id()
                started = time.monotonic()
                block = one.rpc.call("eth_getBlockByNumber", "latest", False)
                latency_ms = round((time.monotonic() - started) * 1000)
                head, stamp = one._parsed("eth_getBlockByNumber", _head_of, block)
            except RpcRejectedError as exc:
                out.append(
                    EndpointProbe(
                        label,
                        ok=False,
                        error=_short(str(exc)),
                        limits=ep.limits.summary(),
                    )
                )
                continue
            except Exception as exc:
                out.append(
                    EndpointProbe(
                        label,
                        ok=False,
                        error=_probe_error(exc),
                        limits=ep.limits.summary(),
                    )
                )
                continue
            finally:
                one.close()
            if actual != self.cfg.chain_id:
                error = (
                    f"serves chain id {actual}, chains.yaml says {self.cfg.chain_id}"
                )
                out.append(
                    EndpointProbe(
                        label, ok=False, error=error, limits=ep.limits.summary()
                    )
                )
                continue
            out.append(
                EndpointProbe(
                    label,
                    ok=True,
                    head=head,
                    head_timestamp=stamp,
                    latency_ms=latency_ms,
                    limits=ep.limits.summary(),
                )
            )
        return out


def _receipts_block(receipts: list[Any], number: int) -> str | None:
    """The block hash all of a block's receipts name (None: no receipts); receipts of
    another block, or of two, are malformed."""
    hashes = set()
    for r in receipts:
        r = parse.obj(r, "receipt")
        if parse.index(r.get("blockNumber"), "block number") != number:
            raise parse.Malformed(f"a receipt of another block than #{number:,}")
        hashes.add(parse.hash32(r.get("blockHash"), "block hash"))
    if len(hashes) > 1:
        raise parse.Malformed(f"receipts of block #{number:,} name two block hashes")
    return hashes.pop() if hashes else None


def _head_of(block: Any) -> tuple[int, int]:
    block = parse.obj(block, "block")
    return parse.quantity(block.get("number")), parse.quantity(block.get("timestamp"))


def probe_label(url: str, index: int) -> str:
    """`#1 host:port`, or `endpoint #1` when the URL may carry a secret."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return f"endpoint #{index}"
    secretive = parts.username or parts.password or parts.query or parts.fragment
    if secretive or parts.path not in ("", "/") or not host:
        return f"endpoint #{index}"
    return f"#{index} {host}" + (f":{port}" if port else "")


def _probe_error(exc: Exception) -> str:
    from ctrip_cli.errors import RpcUnavailableError

    if isinstance(exc, RpcUnavailableError):
        text = str(exc)
        start = text.find("(")
        detail = text[start + 1 : text.rfind(")")] if start >= 0 else "unavailable"
        return re.sub(r"endpoint #\d+: ", "", detail)
    return type(exc).__name__


def _short(text: str) -> str:
    return text if len(text) <= 160 else text[:157] + "..."


def _is_fjord(answer: Any) -> bool:
    """What `isFjord()` on GasPriceOracle says: a chain without the oracle's code
    (anvil, some dev chains) is taken to be on Fjord, in force on every Superchain
    chain since 2024; a revert is an oracle from before Fjord.

    Raises:
        RpcRejectedError: the node refused the call for another reason (a method it
            does not serve, a limit): the pass cannot tell which formula applies.
    """
    if isinstance(answer, RpcRejectedError):
        if _reverted(answer):
            return False
        raise answer
    data = str(answer or "0x").removeprefix("0x")[:64]
    try:
        return not data or int(data, 16) != 0
    except ValueError:  # a malformed answer: the formula of every current chain
        return True


def _reverted(exc: RpcRejectedError) -> bool:
    """Whether a refused eth_call is the EVM reverting: JSON-RPC error code 3 with
    "execution reverted" (go-ethereum internal/ethapi `revertError.ErrorCode()`
    returns 3, EIP-1474; anvil and op-geth answer alike)."""
    text = str(exc)
    return text.endswith("(code 3)") or "execution reverted" in text.lower()


def _tag(block: int | str) -> str:
    return hex(block) if isinstance(block, int) else block
