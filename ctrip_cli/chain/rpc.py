"""Raw JSON-RPC over HTTP: single and batch calls, retries, endpoint failover, parsing.

web3's result formatting is far too slow for scanning, so this module talks JSON-RPC
directly with httpx (the house rule "only webhooks/ and cli/ use httpx" is relaxed for
this raw RPC transport) and parses only the fields the jobs need. Transport failures
are retried with backoff (tenacity) and fail over to the next endpoint; errors never
carry an endpoint URL, which may hold an API key. Node error texts are matched here.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import httpx
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from ctrip_cli.chain import parse
from ctrip_cli.chain.client import BlockHeader, NativeTransfer, TokenTransfer
from ctrip_cli.config import ChainConfig
from ctrip_cli.errors import ChainIdMismatchError, RpcRejectedError, RpcUnavailableError

log = logging.getLogger("ctrip.rpc")

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
_TOO_MANY = (
    "more than",
    "too many",
    "limit exceeded",
    "range is too large",
    "block range",
    "response size",
    "query timeout",
    "exceed",
)


class RpcTooManyResultsError(RpcRejectedError):
    """The node refused a query as too large; ask again with a smaller block range."""


class RpcMethodUnsupportedError(RpcRejectedError):
    """The node does not offer this JSON-RPC method."""


class _Transient(Exception):
    """One round over every endpoint failed in a way worth retrying."""


Call = tuple[str, Sequence[Any]]


class RpcClient:
    """The ChainClient over raw JSON-RPC, with batch calls and endpoint failover."""

    def __init__(
        self,
        cfg: ChainConfig,
        *,
        timeout_s: float = 10.0,
        attempts: int = 4,
        backoff_s: float = 0.25,
        batch_size: int = 500,
        address_chunk: int = 1_000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.cfg = cfg
        self._urls = [u.get_secret_value() for u in cfg.rpc_urls]
        # Loading the CA bundle costs ~20 ms a pass; plain-http endpoints have no TLS.
        tls = any(u.startswith(("https:", "wss:")) for u in self._urls)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=3.0),
            transport=transport,
            verify=tls,  # False only when no endpoint uses TLS at all
        )
        self._ids = itertools.count(1)
        self._preferred = 0
        self._attempts, self._backoff_s = attempts, backoff_s
        self.batch_size, self.address_chunk = batch_size, address_chunk
        self.round_trips = 0
        self.block_receipts: bool | None = None  # learnt on first use

    def close(self) -> None:
        self._http.close()

    # -- transport --

    def call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call, retried with backoff and failed over between endpoints.

        Raises:
            RpcUnavailableError: no endpoint answered after the retries.
            RpcRejectedError: an endpoint answered with a JSON-RPC error.
        """
        (result,) = self.batch([(method, params)])
        return result

    def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Results of `calls` in order, sent as JSON-RPC batches of `batch_size`.

        Raises:
            RpcUnavailableError: no endpoint answered after the retries.
            RpcRejectedError: the node answered any call with an error.
        """
        out: list[Any] = []
        for start in range(0, len(calls), self.batch_size):
            out.extend(self._send(calls[start : start + self.batch_size]))
        return out

    def _send(self, calls: Sequence[Call]) -> list[Any]:
        ids = [next(self._ids) for _ in calls]
        body = [
            {"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
            for i, (m, p) in zip(ids, calls, strict=True)
        ]
        payload = json.dumps(body[0] if len(body) == 1 else body).encode()
        replies = self._post_with_retries(payload, calls[0][0])
        if isinstance(replies, dict):
            replies = [replies]
        by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
        if len(body) > 1 and set(by_id) != set(ids) and len(replies) == 1:
            _raise_error(calls[0][0], replies[0].get("error") or {})
        return [_result(m, by_id.get(i)) for i, (m, _) in zip(ids, calls, strict=True)]

    def _post_with_retries(self, payload: bytes, method: str) -> Any:
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff_s, max=8 * self._backoff_s)
            + wait_random(0, self._backoff_s),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._post_round(payload)
        except _Transient as exc:
            raise RpcUnavailableError(
                f"chain {self.cfg.name!r}: no RPC endpoint answered {method} after "
                f"{self._attempts} attempts ({exc}); check rpc_urls and the nodes, then rerun"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _post_round(self, payload: bytes) -> Any:
        """Try every endpoint once, starting with the last one that worked."""
        failures = []
        n = len(self._urls)
        for k in range(n):
            index = (self._preferred + k) % n
            try:
                self.round_trips += 1
                resp = self._http.post(
                    self._urls[index],
                    content=payload,
                    headers={"content-type": "application/json"},
                )
            except httpx.HTTPError as exc:
                failures.append(f"endpoint #{index + 1}: {type(exc).__name__}")
                continue
            if resp.status_code >= 400:
                # 429 and 5xx are transient; a 401/403 (a bad API key) or 404 is this
                # endpoint's problem: either way the next endpoint may answer.
                failures.append(f"endpoint #{index + 1}: HTTP {resp.status_code}")
                continue
            try:
                body = json.loads(resp.content)
            except ValueError:
                failures.append(f"endpoint #{index + 1}: not JSON")
                continue
            if index != self._preferred:
                log.warning(
                    "chain %s: failing over to RPC endpoint #%d",
                    self.cfg.name,
                    index + 1,
                )
                self._preferred = index
            return body
        raise _Transient("; ".join(failures))

    # -- chain basics --

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def check_chain_id(self) -> None:
        """Raises ChainIdMismatchError when the endpoint serves another chain."""
        self._expect_chain_id(self.chain_id())

    def checked_head(self) -> int:
        """The head, with the chain id checked in the same round trip.

        Raises:
            ChainIdMismatchError: the endpoint serves another chain.
        """
        chain_id, head = self.batch([("eth_chainId", ()), ("eth_blockNumber", ())])
        self._expect_chain_id(int(chain_id, 16))
        return int(head, 16)

    def _expect_chain_id(self, actual: int) -> None:
        if actual != self.cfg.chain_id:
            raise ChainIdMismatchError(
                f"chain {self.cfg.name!r}: the RPC endpoint serves chain id {actual}, "
                f"chains.yaml says {self.cfg.chain_id}; fix rpc_urls or chain_id"
            )

    def head(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def block_header(self, number: int) -> BlockHeader:
        """Raises RpcRejectedError when the node does not have the block."""
        (header,) = self.block_headers([number])
        return header

    def block_headers(self, numbers: Sequence[int]) -> list[BlockHeader]:
        """Headers of `numbers` in one batch (POA extra data is never parsed).

        Raises:
            RpcRejectedError: the node lacks one of the blocks (it is lagging).
        """
        blocks = self.batch(
            [("eth_getBlockByNumber", (hex(n), False)) for n in numbers]
        )
        out = []
        for n, block in zip(numbers, blocks, strict=True):
            if block is None:
                raise RpcRejectedError(f"block #{n:,} not found; the node is lagging")
            out.append(parse.header(block))
        return out

    # -- transfers --

    def token_transfers(
        self,
        from_block: int,
        to_block: int,
        tokens: Sequence[str],
        recipients: Collection[str] | None,
    ) -> list[TokenTransfer]:
        """ERC-20 Transfer logs of `tokens` in the range, to `recipients` (None: to anyone).

        The recipient filter is split into chunks of `address_chunk` topics; a range the
        node finds too large is halved until it answers.

        Raises:
            RpcUnavailableError, RpcRejectedError: as `batch`.
        """
        if not tokens or (recipients is not None and not recipients):
            return []
        topic_sets: list[list[str] | None]
        if recipients is None:
            topic_sets = [None]
        else:
            words = sorted(parse.address_topic(a) for a in recipients)
            chunk = self.address_chunk
            topic_sets = [words[i : i + chunk] for i in range(0, len(words), chunk)]
        filters = [
            {
                "fromBlock": hex(from_block),
                "toBlock": hex(to_block),
                "address": list(tokens),
                "topics": [TRANSFER_TOPIC] if t is None else [TRANSFER_TOPIC, None, t],
            }
            for t in topic_sets
        ]
        logs = self._logs(filters)
        return [
            parse.token_transfer(e)
            for e in logs
            if not e.get("removed") and parse.is_transfer_log(e)
        ]

    def _logs(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            results = self.batch([("eth_getLogs", (f,)) for f in filters])
        except RpcTooManyResultsError:
            return [e for f in filters for e in self._logs_split(f)]
        return [entry for result in results for entry in result]

    def _logs_split(self, flt: dict[str, Any]) -> list[dict[str, Any]]:
        lo, hi = int(flt["fromBlock"], 16), int(flt["toBlock"], 16)
        try:
            return list(self.call("eth_getLogs", flt))
        except RpcTooManyResultsError:
            if lo == hi:
                raise
        mid = (lo + hi) // 2
        halves = [
            {**flt, "fromBlock": hex(a), "toBlock": hex(b)}
            for a, b in ((lo, mid), (mid + 1, hi))
        ]
        return [entry for half in halves for entry in self._logs_split(half)]

    def native_transfers(
        self, from_block: int, to_block: int, recipients: Collection[str]
    ) -> list[NativeTransfer]:
        """Successful top-level transactions in the range that pay one of `recipients`
        (lowercase addresses).

        Uses `eth_getBlockReceipts` (receipts carry `to` and `status`) and then fetches
        only the matched transactions for their value; nodes without it get full blocks
        and the receipts of the matches.

        Raises:
            RpcUnavailableError, RpcRejectedError: as `batch`.
        """
        # Used as given (no copy): the scan passes up to 100,000 addresses per batch.
        wanted = (
            recipients if isinstance(recipients, set | frozenset) else set(recipients)
        )
        if not wanted:
            return []
        numbers = range(from_block, to_block + 1)
        if self.block_receipts is not False:
            try:
                return self._native_by_receipts(numbers, wanted)
            except RpcMethodUnsupportedError:
                log.info(
                    "chain %s: no eth_getBlockReceipts; reading full blocks",
                    self.cfg.name,
                )
                self.block_receipts = False
        return self._native_by_blocks(numbers, wanted)

    def _native_by_receipts(
        self, numbers: range, wanted: Collection[str]
    ) -> list[NativeTransfer]:
        per_block = self.batch([("eth_getBlockReceipts", (hex(n),)) for n in numbers])
        self.block_receipts = True
        matched: list[dict[str, Any]] = []
        for n, receipts in zip(numbers, per_block, strict=True):
            if receipts is None:
                raise RpcRejectedError(f"block #{n:,} not found; the node is lagging")
            matched.extend(r for r in receipts if parse.receipt_pays(r, wanted))
        txs = self.batch(
            [("eth_getTransactionByHash", (r["transactionHash"],)) for r in matched]
        )
        return [
            t
            for r, tx in zip(matched, txs, strict=True)
            if (t := parse.native_transfer(tx, r))
        ]

    def _native_by_blocks(
        self, numbers: range, wanted: Collection[str]
    ) -> list[NativeTransfer]:
        blocks = self.batch([("eth_getBlockByNumber", (hex(n), True)) for n in numbers])
        candidates: list[dict[str, Any]] = []
        for n, block in zip(numbers, blocks, strict=True):
            if block is None:
                raise RpcRejectedError(f"block #{n:,} not found; the node is lagging")
            candidates.extend(
                t for t in block["transactions"] if parse.tx_pays(t, wanted)
            )
        receipts = self.batch(
            [("eth_getTransactionReceipt", (t["hash"],)) for t in candidates]
        )
        return [
            t
            for tx, r in zip(candidates, receipts, strict=True)
            if r is not None and (t := parse.native_transfer(tx, r))
        ]

    def block_hashes(self, numbers: Iterable[int]) -> dict[int, str | None]:
        """Canonical hash of each block number now (None where the node lacks it)."""
        nums = sorted(set(numbers))
        blocks = self.batch([("eth_getBlockByNumber", (hex(n), False)) for n in nums])
        return {
            n: (b["hash"] if b else None) for n, b in zip(nums, blocks, strict=True)
        }


def _result(method: str, reply: dict[str, Any] | None) -> Any:
    if reply is None:
        raise RpcRejectedError(f"{method}: the node sent no answer for this call")
    if reply.get("error") is not None:
        _raise_error(method, reply["error"])
    return reply.get("result")


def _raise_error(method: str, error: Any) -> None:
    message = (
        str(error.get("message", "error")) if isinstance(error, dict) else str(error)
    )
    code = error.get("code") if isinstance(error, dict) else None
    lowered = message.lower()
    if code == -32601 or "not supported" in lowered or "method not found" in lowered:
        raise RpcMethodUnsupportedError(f"{method}: {message}")
    if method == "eth_getLogs" and (
        code == -32005 or any(s in lowered for s in _TOO_MANY)
    ):
        raise RpcTooManyResultsError(f"{method}: {message}")
    raise RpcRejectedError(f"{method}: {message}")
