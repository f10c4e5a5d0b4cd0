"""Benchmark `ctrip scan` on a mainnet-shaped chain through the provider emulator,
against the floor read through the same emulator.

Builds the world (scripts/bench/mainnet_world.py: >= 300 blocks of >= 150
transactions, 6-log swaps), seeds a PostgreSQL template with 10,000 open payments
(half native, half the three tokens) of which `--sprinkle` are really paid inside the
range, and runs the emulator as its own process (`python -m scripts.emulator`, so
neither side shares its interpreter). Then, interleaved over `--runs`:

- the floor (scripts/bench/scan_floor.py), both read methods, sized to the profile;
- `ctrip scan --chain local --json`, the real CLI pass, on a fresh copy of the
  database, checked to reach the last block and to detect every paid payment.

It reports blocks/s, calls per block and bytes per block (as the emulator counted
them) for each, the ratio scan / best floor (target >= 0.8), and a last run with
`rpc_max_calls_per_s: 100` in chains.yaml, checking the emulator never saw more than
100 calls within any second and that the pass still finished.

    python scripts/bench/mainnet_scan_bench.py [--blocks 300] [--txs 150]
        [--profile geth] [--latency-s 0.05] [--runs 1] [--native-read receipts ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ctrip_cli.config import to_checksum  # noqa: E402
from ctrip_cli.db import engine as db_engine  # noqa: E402
from ctrip_cli.db.models import Payment  # noqa: E402
from scripts.bench import mainnet_world as mw  # noqa: E402
from scripts.bench import pgdb, scan_floor  # noqa: E402
from scripts.emulator import Limits, preset  # noqa: E402
from tests.evm import Anvil  # noqa: E402

TOKEN_ASSETS = ("USDC", "DAI", "USDT")
UNIT = {"ETH": 10**15, "USDC": 1_000_000, "DAI": 10**18, "USDT": 1_000_000}
NOW = datetime.now(UTC).replace(microsecond=0)


def address(i: int) -> str:
    return to_checksum(
        "0x" + hashlib.sha256(f"mainnet-bench{i}".encode()).hexdigest()[:40]
    )


def asset_of(i: int) -> str:
    """Even payments native, odd ones cycle through the tokens."""
    return "ETH" if i % 2 == 0 else TOKEN_ASSETS[(i // 2) % len(TOKEN_ASSETS)]


def sprinkled(payments: int, k: int, blocks: int) -> list[mw.Payment]:
    """`k` payments, spread over the payments and the blocks, each paid in full."""
    # Alternate parity, so half of them are native and half tokens (see asset_of).
    picks = [min(payments - 1, (j * payments) // k + j % 2) for j in range(k)]
    return [
        mw.Payment(
            block=(j * blocks) // k,
            to=address(i),
            asset=asset_of(i),
            amount=2 * UNIT[asset_of(i)],
        )
        for j, i in enumerate(picks)
    ]


def seed_template(name: str, tokens: dict[str, str], open_payments: int) -> None:
    """A migrated database holding `open_payments` pending payments (bulk-inserted)."""

    def payment(i: int) -> dict[str, Any]:
        asset = asset_of(i)
        return pgdb.pending_payment(
            i,
            asset=asset,
            token=tokens.get(asset),
            decimals=mw.DECIMALS[asset],
            address=address(i),
            amount=2 * UNIT[asset],
            now=NOW,
        )

    pgdb.seed(name, open_payments, address, payment, NOW)


def chains_yaml(url: str, world: mw.World, extra: dict[str, Any]) -> str:
    tokens = "\n".join(
        f'      {s}: {{address: "{a}", decimals: {mw.DECIMALS[s]}}}'
        for s, a in world.tokens.items()
    )
    lines = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in extra.items())
    return f"""chains:
  local:
    chain_id: 31337
    rpc_urls: ["{url}"]
    confirmations: 1
    native: {{symbol: ETH, decimals: 18}}
    tokens:
{tokens}
    start_block: {world.first}
    max_block_range: 1000
    reorg_depth_blocks: 64
{lines}"""


class EmulatorProcess:
    """`python -m scripts.emulator` as a child process, with its stats endpoint."""

    def __init__(self, upstream: str, profile: str, changes: dict[str, Any]) -> None:
        args = [
            sys.executable,
            "-m",
            "scripts.emulator",
            "--upstream",
            upstream,
            "--profile",
            profile,
        ]
        for key, value in changes.items():
            args += ["--set", f"{key}={value}"]
        self.proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        started = json.loads(self.proc.stdout.readline())
        self.url: str = started["url"]
        self.http = httpx.Client(timeout=30)

    def stats(self) -> dict[str, Any]:
        return dict(self.http.get(self.url + "/_emulator/stats").json())

    def reset(self) -> None:
        self.http.get(self.url + "/_emulator/reset")

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(10)


def run_scan(
    emu: EmulatorProcess,
    template: str,
    world: mw.World,
    paid: list[mw.Payment],
    extra: dict[str, Any],
    timeout_s: float,
) -> dict[str, Any]:
    """One `ctrip scan` CLI pass on a fresh copy of the template, with what the emulator saw."""
    name = pgdb.clone(template)
    path = Path(tempfile.mkdtemp()) / "chains.yaml"
    path.write_text(chains_yaml(emu.url, world, extra))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTRIP_")}
    env.update(
        {
            "CTRIP_DATABASE_URL": pgdb.url(name),
            "CTRIP_CHAINS_FILE": str(path),
            "PYTHONPATH": str(REPO),
        }
    )
    emu.reset()
    began = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ctrip_cli", "scan", "--chain", "local", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        out: dict[str, Any] = {
            "exit": done.returncode,
            "seconds": round(time.perf_counter() - began, 3),
        }
    except subprocess.TimeoutExpired:
        out = {"exit": "timeout", "seconds": timeout_s}
        done = None
    out["emulator"] = emu.stats()
    try:
        if done is not None:
            out["stderr"] = done.stderr.strip()[-2000:]
            try:
                out["result"] = json.loads(done.stdout)
            except ValueError:
                out["stdout"] = done.stdout.strip()[-2000:]
        out["payments"] = _check_payments(name, paid)
    finally:
        pgdb.drop(name)
        path.unlink()
    result = out.get("result") or {}
    out["finished"] = out["exit"] == 0 and result.get("to_block") == world.last
    return out


def _check_payments(name: str, paid: list[mw.Payment]) -> dict[str, Any]:
    """How many of the paid payments the pass detected with the full amount."""
    engine = db_engine.make_engine(pgdb.url(name))
    addresses = [p.to for p in paid]
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    Payment.address,
                    Payment.status,
                    Payment.amount_received,
                    Payment.amount,
                ).where(Payment.address.in_(addresses))
            ).all()
    finally:
        engine.dispose()
    found = [
        r
        for r in rows
        if r.status == "detected" and int(r.amount_received) >= int(r.amount)
    ]
    missed = sorted(set(addresses) - {r.address for r in found})
    return {"paid": len(paid), "found": len(found), "missed": missed[:5]}


def run_floor(
    emu: EmulatorProcess, world: mw.World, limits: Limits, paid: list[mw.Payment]
) -> dict[str, Any]:
    native = {p.to.lower() for p in paid if p.asset == "ETH"}
    tokens = {p.to.lower() for p in paid if p.asset != "ETH"}
    out: dict[str, Any] = {}
    for method in scan_floor.METHODS:
        emu.reset()
        floor = scan_floor.run(
            emu.url,
            world.first,
            world.last,
            method=method,
            tokens=list(world.tokens.values()),
            watched_native=native,
            watched_tokens=tokens,
            limits=limits,
        )
        report = floor.report()
        report["emulator"] = _seen(emu.stats(), world.blocks)
        report["found_all"] = len(floor.native) == len(native) and len(
            floor.tokens
        ) == len(tokens)
        out[method] = report
    return out


def _seen(stats: dict[str, Any], blocks: int) -> dict[str, Any]:
    """The emulator's view of one pass, per block."""
    return {
        "calls_per_block": round(stats["total_calls"] / blocks, 2),
        "http_requests": stats["http_requests"],
        "bytes_per_block": round(stats["total_bytes"] / blocks),
        "calls": stats["calls"],
        "limited": stats["limited"],
        "max_calls_in_1s": stats["max_calls_in_1s"],
    }


def summarise_scan(run: dict[str, Any], blocks: int) -> dict[str, Any]:
    out = {k: run[k] for k in ("exit", "seconds", "finished", "payments")}
    out["blocks_per_s"] = round(blocks / run["seconds"], 1) if run["finished"] else None
    out["emulator"] = _seen(run["emulator"], blocks)
    if not run["finished"]:
        out["error"] = run.get("stderr") or run.get("stdout")
    if "result" in run:
        out["result"] = {
            k: run["result"].get(k)
            for k in (
                "to_block",
                "transfers_recorded",
                "payments_detected",
                "rpc_round_trips",
            )
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--txs", type=int, default=150)
    parser.add_argument("--payments", type=int, default=10_000)
    parser.add_argument("--sprinkle", type=int, default=20)
    parser.add_argument("--profile", default="geth")
    parser.add_argument("--latency-s", type=float, default=0.05)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="emulator limit override",
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--native-read",
        action="append",
        default=[],
        help="chains.yaml native_read per scan run (repeatable)",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=100,
        help="rpc_max_calls_per_s for the budget run (0: skip)",
    )
    parser.add_argument("--timeout-s", type=float, default=900)
    args = parser.parse_args()
    from scripts.emulator.__main__ import overrides

    changes = {"latency_s": args.latency_s, **overrides(args.set)}
    limits = preset(args.profile).replace(**changes)
    paid = sprinkled(args.payments, args.sprinkle, args.blocks)
    report: dict[str, Any] = {
        "profile": args.profile,
        "limits": asdict(limits) | {"missing_methods": sorted(limits.missing_methods)},
    }
    with Anvil(extra_args=["--gas-limit", "100000000"]) as anvil:
        world = mw.build(
            anvil, blocks=args.blocks, txs_per_block=args.txs, payments=paid
        )
        report["world"] = {
            "blocks": world.blocks,
            "txs_per_block": world.txs_per_block,
            "build_s": round(world.build_s, 1),
            **mw.measure(anvil.url, world.first, world.last),
        }
        print(json.dumps({"world": report["world"]}), flush=True)
        template = f"ctrip_bench_tpl_mainnet_{uuid.uuid4().hex[:6]}"
        began = time.perf_counter()
        seed_template(template, world.tokens, args.payments)
        report["seed_s"] = round(time.perf_counter() - began, 1)
        emu = EmulatorProcess(
            anvil.url, args.profile, {k: _cli(v) for k, v in changes.items()}
        )
        try:
            report |= bench(emu, template, world, limits, paid, args)
        finally:
            emu.stop()
            pgdb.drop(template)
    print(json.dumps(report, indent=2))


def _cli(value: Any) -> str:
    return ",".join(sorted(value)) if isinstance(value, frozenset) else str(value)


def bench(
    emu: EmulatorProcess,
    template: str,
    world: mw.World,
    limits: Limits,
    paid: list[mw.Payment],
    args: argparse.Namespace,
) -> dict[str, Any]:
    variants = args.native_read or [None]
    floors: list[dict[str, Any]] = []
    scans: dict[str, list[dict[str, Any]]] = {str(v or "default"): [] for v in variants}
    run_floor(emu, world, limits, paid)  # warm the node's caches once
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        floors.append(run_floor(emu, world, limits, paid))
        for v in variants:
            extra = {"native_read": v} if v else {}
            scans[str(v or "default")].append(
                summarise_scan(
                    run_scan(emu, template, world, paid, extra, args.timeout_s),
                    world.blocks,
                )
            )
    out: dict[str, Any] = {
        "floor": floors[-1],
        "scan": {k: v[-1] for k, v in scans.items()},
    }
    best = {
        m: statistics.median(
            f[m]["blocks_per_s"] for f in floors if "blocks_per_s" in f[m]
        )
        for m in scan_floor.METHODS
        if "blocks_per_s" in floors[-1][m]
    }
    out["floor_median_blocks_per_s"] = best
    cheapest = max(best.values())
    ratios = {}
    for key, runs in scans.items():
        done = [r["blocks_per_s"] for r in runs if r["blocks_per_s"]]
        ratios[key] = (
            round(statistics.median(done) / cheapest, 2)
            if len(done) == len(runs)
            else "scan did not finish"
        )
    out["scan_over_best_floor"] = ratios
    out["target"] = ">= 0.8"
    if args.budget:
        run = run_scan(
            emu,
            template,
            world,
            paid,
            {"rpc_max_calls_per_s": args.budget},
            args.timeout_s,
        )
        summary = summarise_scan(run, world.blocks)
        seen = run["emulator"]["max_calls_in_1s"]
        per_bucket = max(run["emulator"]["calls_per_second"] or [0])
        summary["budget"] = {
            "rpc_max_calls_per_s": args.budget,
            "max_calls_in_any_1s_window": seen,
            "max_calls_in_a_whole_second": per_bucket,
            "within": summary["finished"] and seen <= args.budget,
        }
        out["budget_run"] = summary
    return out


if __name__ == "__main__":
    main()
