"""Benchmark `ctrip scan` against the floor: anvil + PostgreSQL, 2,000 blocks holding
2,000 transfers to watched addresses (native, a 6- and an 18-decimal token), scanned
with 1,000 and with 100,000 open payments.

The floor, timed in the same run, fetches exactly the data the scan needs (the token
Transfer logs, every block's receipts, the matched native transactions, the header
window and the tip re-check) with raw batch JSON-RPC by the fastest method, and does
nothing else.

    python scripts/bench/scan_bench.py [--blocks 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ctrip_cli.chain.client import Watched  # noqa: E402
from ctrip_cli.chain.evm import TRANSFER_TOPIC, EvmChain  # noqa: E402
from ctrip_cli.config import ScanSettings, load_chains, to_checksum  # noqa: E402
from ctrip_cli.db import engine as db_engine  # noqa: E402
from ctrip_cli.jobs import scan as scan_job  # noqa: E402
from scripts.bench import pgdb  # noqa: E402
from tests.evm import ANVIL_ACCOUNTS, Anvil, deploy_token, mint  # noqa: E402

NOW = datetime.now(UTC).replace(microsecond=0)
ASSETS = ("ETH", "USDC", "DAI")
UNIT = {"ETH": 10**15, "USDC": 1_000_000, "DAI": 10**18}


def address(i: int) -> str:
    return to_checksum("0x" + hashlib.sha256(f"bench{i}".encode()).hexdigest()[:40])


def make_chain(anvil: Anvil, blocks: int) -> dict[str, Any]:
    """One transfer per block; watched address i gets two (it pays in two parts)."""
    usdc = deploy_token(anvil, decimals=6, symbol="USDC")
    dai = deploy_token(anvil, decimals=18, symbol="DAI")
    payer = ANVIL_ACCOUNTS[1]
    for token in (usdc, dai):
        mint(anvil, token, payer, 10**40)
    token_of = {"USDC": usdc, "DAI": dai}
    first = anvil.block_number() + 1
    watched = blocks // 2
    for k in range(blocks):
        i = k % watched
        asset = ASSETS[i % 3]
        to = address(i)
        if asset == "ETH":
            tx = {"from": payer, "to": to, "value": hex(UNIT["ETH"])}
        else:
            data = "0xa9059cbb" + to[2:].lower().rjust(64, "0") + f"{UNIT[asset]:064x}"
            tx = {"from": payer, "to": token_of[asset], "data": data}
        anvil.rpc("eth_sendTransactionSync", tx)
    last = anvil.block_number()
    return {"first": first, "last": last, "usdc": usdc, "dai": dai, "watched": watched}


def chains_yaml(url: str, chain: dict[str, Any]) -> str:
    return f"""
chains:
  local:
    chain_id: 31337
    rpc_urls: ["{url}"]
    confirmations: 1
    native: {{symbol: ETH, decimals: 18}}
    tokens:
      USDC: {{address: "{chain["usdc"]}", decimals: 6}}
      DAI: {{address: "{chain["dai"]}", decimals: 18}}
    start_block: {chain["first"]}
    max_block_range: {chain["last"] - chain["first"] + 1}
    reorg_depth_blocks: 64
"""


def seed_template(name: str, chain: dict[str, Any], open_payments: int) -> None:
    """A migrated database holding `open_payments` pending payments (bulk-inserted)."""
    tokens = {"ETH": None, "USDC": chain["usdc"], "DAI": chain["dai"]}
    decimals = {"ETH": 18, "USDC": 6, "DAI": 18}

    def payment(i: int) -> dict[str, Any]:
        asset = ASSETS[i % 3]
        return pgdb.pending_payment(
            i,
            asset=asset,
            token=tokens[asset],
            decimals=decimals[asset],
            address=address(i),
            amount=2 * UNIT[asset],
            now=NOW,
        )

    pgdb.seed(name, open_payments, address, payment, NOW)


_url, clone, drop = pgdb.url, pgdb.clone, pgdb.drop


COMMIT_S: list[float] = []
SETTINGS: list[ScanSettings] = [ScanSettings()]


def _timed_commits() -> None:
    """Instrument the job's batch commits (bench only): where does the time go?"""
    original = scan_job._commit_batch

    def timed(*args: Any, **kwargs: Any) -> None:
        began = time.perf_counter()
        try:
            original(*args, **kwargs)
        finally:
            COMMIT_S.append(time.perf_counter() - began)

    scan_job._commit_batch = timed  # type: ignore[assignment]


def time_scan(cfg: Any, template: str, chain: dict[str, Any]) -> tuple[float, Any]:
    """One scan pass of the whole range on a fresh copy of the seeded database."""
    name = clone(template)
    engine = db_engine.make_engine(_url(name))
    try:
        with engine.connect():
            pass  # open the pool's connection outside the timing
        COMMIT_S.clear()
        began = time.perf_counter()
        client = EvmChain.open(cfg)
        with db_engine.session_factory(engine)() as session:
            result = scan_job.run(
                session, client, cfg=cfg, now=NOW, settings=SETTINGS[-1]
            )
        client.close()
        elapsed = time.perf_counter() - began
    finally:
        engine.dispose()
        drop(name)
    expected = chain["last"] - chain["first"] + 1
    if result.to_block != chain["last"] or result.transfers_recorded != expected:
        raise SystemExit(f"scan did not read everything: {result}")
    return elapsed, (result, sum(COMMIT_S))


def time_read(cfg: Any, chain: dict[str, Any], native_to: set[str]) -> float:
    """ctrip's reading alone (its RPC client and parsing into domain types), no database."""
    began = time.perf_counter()
    client = EvmChain.open(cfg)
    lo, hi = chain["first"], chain["last"]
    client.checked_head()
    client.block_headers(sorted({lo, *range(max(lo, hi - 63), hi + 1)}))
    watched = Watched(native_to, [chain["usdc"], chain["dai"]], None)
    client.transfers(lo, hi, watched)
    client.block_hashes([hi])
    client.close()
    return time.perf_counter() - began


def time_floor(url: str, chain: dict[str, Any], native_to: set[str]) -> float:
    """The same data by raw batch JSON-RPC, the fastest way anvil offers; nothing else."""
    http = httpx.Client(timeout=60)
    ids = iter(range(1, 10**9))

    def batch(calls: list[tuple[str, list[Any]]]) -> list[Any]:
        body = [
            {"jsonrpc": "2.0", "id": next(ids), "method": m, "params": p}
            for m, p in calls
        ]
        return [r["result"] for r in http.post(url, json=body).json()]

    began = time.perf_counter()
    lo, hi = chain["first"], chain["last"]
    batch([("eth_chainId", []), ("eth_blockNumber", [])])
    batch(
        [
            ("eth_getBlockByNumber", [hex(n), False])
            for n in range(max(lo, hi - 63), hi + 1)
        ]
    )
    flt = {
        "fromBlock": hex(lo),
        "toBlock": hex(hi),
        "address": [chain["usdc"], chain["dai"]],
    }
    batch([("eth_getLogs", [{**flt, "topics": [TRANSFER_TOPIC]}])])
    matched = []
    for start in range(lo, hi + 1, 500):
        numbers = range(start, min(start + 500, hi + 1))
        for receipts in batch([("eth_getBlockReceipts", [hex(n)]) for n in numbers]):
            matched += [
                r["transactionHash"] for r in receipts if (r["to"] or "") in native_to
            ]
    for start in range(0, len(matched), 500):
        batch([("eth_getTransactionByHash", [h]) for h in matched[start : start + 500]])
    batch([("eth_getBlockByNumber", [hex(hi), False])])
    elapsed = time.perf_counter() - began
    http.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--batch-blocks", type=int, default=None)
    args = parser.parse_args()
    SETTINGS.append(ScanSettings(batch_blocks=args.batch_blocks))
    _timed_commits()
    with Anvil() as anvil:
        t = time.perf_counter()
        chain = make_chain(anvil, args.blocks)
        print(
            f"chain: blocks #{chain['first']}-#{chain['last']} in {time.perf_counter() - t:.1f}s"
        )
        small, big = (
            f"ctrip_bench_tpl_1k_{uuid.uuid4().hex[:6]}",
            f"ctrip_bench_tpl_big_{uuid.uuid4().hex[:6]}",
        )
        t = time.perf_counter()
        seed_template(small, chain, chain["watched"])
        seed_template(big, chain, max(args.big, chain["watched"]))
        print(f"databases seeded in {time.perf_counter() - t:.1f}s")
        path = Path(tempfile.mkdtemp()) / "chains.yaml"
        path.write_text(chains_yaml(anvil.url, chain))
        cfg = load_chains(path, {})["local"]
        native_to = {address(i).lower() for i in range(chain["watched"]) if i % 3 == 0}
        try:
            report(
                run_all(anvil.url, cfg, chain, native_to, small, big, args.runs),
                chain,
                args,
            )
        finally:
            drop(small)
            drop(big)
            path.unlink()


def run_all(
    url: str,
    cfg: Any,
    chain: dict[str, Any],
    native_to: set[str],
    small: str,
    big: str,
    runs: int,
) -> dict[str, Any]:
    times: dict[str, list[float]] = {
        "floor": [],
        "read_only": [],
        "scan_1k": [],
        "scan_1k_commits": [],
        "scan_big": [],
        "scan_big_commits": [],
    }
    results = {}
    time_floor(url, chain, native_to)  # warm the node's caches once
    for _ in range(runs):  # interleaved, so drift hits every series alike
        times["floor"].append(time_floor(url, chain, native_to))
        times["read_only"].append(time_read(cfg, chain, native_to))
        for key, template in (("scan_1k", small), ("scan_big", big)):
            elapsed, (results[key], commit_s) = time_scan(cfg, template, chain)
            times[key].append(elapsed)
            times[f"{key}_commits"].append(commit_s)
    return {"times": times, "results": results}


def _ratios(t: dict[str, float], big: int) -> dict[str, float]:
    return {
        "read_only_over_floor": round(t["read_only"] / t["floor"], 2),
        "scan_1k_over_floor": round(t["scan_1k"] / t["floor"], 2),
        "scan_big_over_floor": round(t["scan_big"] / t["floor"], 2),
        f"scan_{big}_over_scan_1k": round(t["scan_big"] / t["scan_1k"], 2),
    }


def report(
    data: dict[str, Any], chain: dict[str, Any], args: argparse.Namespace
) -> None:
    """Medians and minima (the least disturbed run, on a busy machine) with ratios."""
    med = {k: statistics.median(v) for k, v in data["times"].items()}
    low = {k: min(v) for k, v in data["times"].items()}
    blocks = chain["last"] - chain["first"] + 1
    trips = data["results"]["scan_1k"].rpc_round_trips
    trips_big = data["results"]["scan_big"].rpc_round_trips
    out = {
        "blocks": blocks,
        "transfers": blocks,
        "runs": args.runs,
        "batch_blocks": args.batch_blocks,
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "min_s": {k: round(v, 4) for k, v in low.items()},
        "ratios_of_medians": _ratios(med, args.big),
        "ratios_of_minima": _ratios(low, args.big),
        "round_trips_per_1000_blocks": {
            "1k": round(trips * 1000 / blocks, 1),
            "big": round(trips_big * 1000 / blocks, 1),
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
