"""The floor of a scan: the data `ctrip scan` needs, read by raw batch JSON-RPC the
cheapest way an endpoint's limits allow, and nothing else.

Two read methods, each sized to the endpoint's `Limits` (calls a batch, result bytes
a batch, blocks per eth_getLogs) from the bytes of one probed block:

- `receipts`: eth_getBlockReceipts for every block (native transfers and token
  Transfer logs both come from the receipts), eth_getTransactionByHash for the
  matched native transfers (receipts carry no value), the header window;
- `blocks`: eth_getBlockByNumber(full) for every block, eth_getLogs for the tokens'
  Transfer logs, eth_getTransactionReceipt for the matched native transfers (status).

Both open with chain id + head and close with the tip re-check, as the scan does.

    python scripts/bench/scan_floor.py [--blocks 60] [--txs 150] [--profile geth]
        [--latency-s 0.05] [--max-batch-response-bytes N]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scripts.emulator import Emulator, Limits, preset  # noqa: E402

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
Method = Literal["receipts", "blocks"]
METHODS: tuple[Method, ...] = ("receipts", "blocks")
DEFAULT_BATCH = 500  # calls a batch where the endpoint sets no limit


@dataclass
class FloorRun:
    method: Method
    blocks: int
    seconds: float = 0.0
    calls: int = 0
    http_requests: int = 0
    bytes: int = 0
    batch_calls: int = 0  # the batch size chosen for the per-block reads
    native: list[tuple[str, str, int]] = field(default_factory=list)  # tx, to, wei
    tokens: list[tuple[str, str, str, int]] = field(
        default_factory=list
    )  # tx, token, to, amount
    unavailable: str | None = None

    def report(self) -> dict[str, Any]:
        if self.unavailable:
            return {"method": self.method, "unavailable": self.unavailable}
        return {
            "method": self.method,
            "seconds": round(self.seconds, 3),
            "blocks_per_s": round(self.blocks / self.seconds, 1),
            "calls_per_block": round(self.calls / self.blocks, 2),
            "http_requests": self.http_requests,
            "bytes_per_block": round(self.bytes / self.blocks),
            "batch_calls": self.batch_calls,
            "native_found": len(self.native),
            "token_found": len(self.tokens),
        }


class _Rpc:
    """Raw batch JSON-RPC that counts calls, requests and bytes."""

    def __init__(self, url: str, run: FloorRun) -> None:
        self.url, self.run = url, run
        self.http = httpx.Client(timeout=httpx.Timeout(120, connect=5))
        self.ids = itertools.count(1)

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        body = [
            {"jsonrpc": "2.0", "id": next(self.ids), "method": m, "params": p}
            for m, p in calls
        ]
        reply = self.http.post(self.url, json=body)
        self.run.calls += len(calls)
        self.run.http_requests += 1
        self.run.bytes += len(reply.content)
        reply.raise_for_status()
        entries = reply.json()
        if not isinstance(entries, list) or len(entries) != len(calls):
            raise RuntimeError(f"{calls[0][0]}: batch refused: {str(entries)[:300]}")
        by_id = {e.get("id"): e for e in entries}
        out = []
        for call in body:
            entry = by_id.get(call["id"], {})
            if "error" in entry:
                raise RuntimeError(f"{call['method']}: {entry['error']}")
            out.append(entry.get("result"))
        return out

    def sized(self, calls: list[tuple[str, list[Any]]], size: int) -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(calls), size):
            out.extend(self.batch(calls[start : start + size]))
        return out

    def close(self) -> None:
        self.http.close()


def batch_size(limits: Limits, bytes_per_call: int) -> int:
    """Calls a batch within the endpoint's call and result-byte caps."""
    if not limits.batching:
        return 1
    size = limits.max_batch_calls or DEFAULT_BATCH
    cap = limits.max_batch_response_bytes
    if cap is not None:
        size = min(size, max(1, cap // max(1, bytes_per_call)))
    return size


def run(
    url: str,
    first: int,
    last: int,
    *,
    method: Method,
    tokens: Sequence[str],
    watched_native: set[str],
    watched_tokens: set[str],
    limits: Limits,
    header_window: int = 64,
) -> FloorRun:
    """One floor pass over blocks first..last through `url`."""
    result = FloorRun(method, last - first + 1)
    if method == "receipts" and "eth_getBlockReceipts" in limits.missing_methods:
        result.unavailable = "eth_getBlockReceipts is not offered"
        return result
    rpc = _Rpc(url, result)
    began = time.perf_counter()
    try:
        rpc.batch([("eth_chainId", []), ("eth_blockNumber", [])])
        numbers = list(range(first, last + 1))
        lower = {a.lower() for a in tokens}
        if method == "receipts":
            _by_receipts(rpc, numbers, lower, watched_native, watched_tokens, limits)
            window = numbers[-header_window:]
            rpc.sized(
                [("eth_getBlockByNumber", [hex(n), False]) for n in window],
                batch_size(limits, 2_000),
            )
        else:
            _by_blocks(rpc, numbers, lower, watched_native, watched_tokens, limits)
        rpc.batch([("eth_getBlockByNumber", [hex(last), False])])
    finally:
        rpc.close()
    result.seconds = time.perf_counter() - began
    return result


def _probe(rpc: _Rpc, method: str, params: list[Any]) -> int:
    """Bytes of one answer (counted like any other call)."""
    before = rpc.run.bytes
    rpc.batch([(method, params)])
    return rpc.run.bytes - before


def _by_receipts(
    rpc: _Rpc,
    numbers: list[int],
    tokens: set[str],
    native_to: set[str],
    token_to: set[str],
    limits: Limits,
) -> None:
    per_block = _probe(rpc, "eth_getBlockReceipts", [hex(numbers[0])])
    size = batch_size(limits, int(per_block * 1.25))
    rpc.run.batch_calls = size
    matched: list[tuple[str, str]] = []
    calls = [("eth_getBlockReceipts", [hex(n)]) for n in numbers]
    for receipts in rpc.sized(calls, size):
        for r in receipts:
            to = (r.get("to") or "").lower()
            if to in native_to and r["status"] == "0x1":
                matched.append((r["transactionHash"], to))
            for log in r["logs"]:
                _token_log(rpc.run, log, tokens, token_to)
    if matched:
        txs = rpc.sized(
            [("eth_getTransactionByHash", [h]) for h, _ in matched],
            batch_size(limits, 1_000),
        )
        rpc.run.native = [
            (h, to, int(tx["value"], 16))
            for (h, to), tx in zip(matched, txs, strict=True)
        ]


def _by_blocks(
    rpc: _Rpc,
    numbers: list[int],
    tokens: set[str],
    native_to: set[str],
    token_to: set[str],
    limits: Limits,
) -> None:
    per_block = _probe(rpc, "eth_getBlockByNumber", [hex(numbers[0]), True])
    size = batch_size(limits, int(per_block * 1.25))
    rpc.run.batch_calls = size
    candidates: list[tuple[str, str, int]] = []
    calls = [("eth_getBlockByNumber", [hex(n), True]) for n in numbers]
    for block in rpc.sized(calls, size):
        for tx in block["transactions"]:
            to = (tx.get("to") or "").lower()
            if to in native_to:
                candidates.append((tx["hash"], to, int(tx["value"], 16)))
    if candidates:
        receipts = rpc.sized(
            [("eth_getTransactionReceipt", [h]) for h, _, _ in candidates],
            batch_size(limits, 3_000),
        )
        rpc.run.native = [
            c for c, r in zip(candidates, receipts, strict=True) if r["status"] == "0x1"
        ]
    span = limits.logs_max_blocks or len(numbers)
    flt = {"address": sorted(tokens), "topics": [TRANSFER_TOPIC]}
    ranges = [
        (lo, min(lo + span - 1, numbers[-1]))
        for lo in range(numbers[0], numbers[-1] + 1, span)
    ]
    calls_logs = [
        ("eth_getLogs", [{**flt, "fromBlock": hex(lo), "toBlock": hex(hi)}])
        for lo, hi in ranges
    ]
    for logs in rpc.sized(calls_logs, batch_size(limits, 1_000_000)):
        for log in logs:
            _token_log(rpc.run, log, tokens, token_to)


def _token_log(
    run: FloorRun, log: dict[str, Any], tokens: set[str], token_to: set[str]
) -> None:
    topics = log["topics"]
    if (
        len(topics) != 3
        or topics[0] != TRANSFER_TOPIC
        or log["address"].lower() not in tokens
    ):
        return
    to = "0x" + topics[2][-40:]
    if to in token_to:
        run.tokens.append(
            (log["transactionHash"], log["address"].lower(), to, int(log["data"], 16))
        )


def both(url: str, first: int, last: int, **kw: Any) -> dict[Method, FloorRun]:
    """Both read methods, one after the other."""
    return {m: run(url, first, last, method=m, **kw) for m in METHODS}


def main() -> None:
    from scripts.bench import mainnet_world as mw
    from tests.evm import Anvil

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=60)
    parser.add_argument("--txs", type=int, default=150)
    parser.add_argument("--profile", default="geth")
    parser.add_argument("--latency-s", type=float, default=0.05)
    parser.add_argument("--max-batch-response-bytes", type=int, default=None)
    args = parser.parse_args()
    changes: dict[str, Any] = {"latency_s": args.latency_s}
    if args.max_batch_response_bytes is not None:
        changes["max_batch_response_bytes"] = args.max_batch_response_bytes
    limits = preset(args.profile).replace(**changes)
    watched = [
        "0x" + hashlib.sha256(f"floor{i}".encode()).hexdigest()[:40] for i in range(10)
    ]
    payments = [
        mw.Payment(
            block=i * (args.blocks // 10),
            to=a,
            asset=("ETH", "USDC")[i % 2],
            amount=10**6,
        )
        for i, a in enumerate(watched)
    ]
    with Anvil(extra_args=["--gas-limit", "100000000"]) as anvil:
        world = mw.build(
            anvil, blocks=args.blocks, txs_per_block=args.txs, payments=payments
        )
        with Emulator(anvil.url, limits) as emu:
            runs = both(
                emu.url,
                world.first,
                world.last,
                tokens=list(world.tokens.values()),
                watched_native=set(watched[0::2]),
                watched_tokens=set(watched[1::2]),
                limits=limits,
            )
            limited = dict(emu.limited)
    print(
        json.dumps(
            {
                "profile": args.profile,
                "blocks": world.blocks,
                "limited": limited,
                "floor": {m: r.report() for m, r in runs.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
