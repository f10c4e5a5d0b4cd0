"""Benchmark `reconcile`: 100,000 deposit addresses on anvil + PostgreSQL.

Half the payments wait for the native coin, half for a token; their rows are
bulk-inserted (scripts/bench/pgdb.py) into a database of the bench's own, dropped at
the end. A few addresses get money no transfer explains (native coin set by
anvil_setBalance, tokens minted): the pass must credit exactly those. Multicall3's
ABI is put at its canonical address (tests/contracts/MulticallStandIn), and the
pass runs twice on fresh copies of the database: through Multicall3, and with
`multicall3: null` (one eth_getBalance / eth_call per balance, batched), the
per-balance floor the multicall path is compared with in the same run.

    python scripts/bench/reconcile_bench.py [--payments 100000] [--funded 20]

Reported per run: JSON-RPC calls, HTTP requests, wall time of the pass (block
choice, ledger reads, balance reads, comparison and the one write), the credits.
Target: <= 300 calls and <= 60 s through Multicall3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from ctrip_cli.chain import balances  # noqa: E402
from ctrip_cli.chain.evm import EvmChain  # noqa: E402
from ctrip_cli.config import ScanSettings, load_chains, to_checksum  # noqa: E402
from ctrip_cli.db import engine as db_engine  # noqa: E402
from ctrip_cli.db.models import ScanCursor  # noqa: E402
from ctrip_cli.jobs import reconcile as reconcile_job  # noqa: E402
from scripts.bench import pgdb  # noqa: E402
from tests.evm import Anvil, deploy_contract, deploy_token, mint  # noqa: E402


def address(i: int) -> str:
    return to_checksum(
        "0x" + hashlib.sha256(f"reconcile-bench:{i}".encode()).hexdigest()[:40]
    )


def chains_yaml(url: str, token: str, multicall: str | None) -> str:
    line = "null" if multicall is None else f'"{multicall}"'
    return f"""
chains:
  local:
    chain_id: 31337
    rpc_urls: ["{url}"]
    confirmations: 2
    native: {{symbol: ETH, decimals: 18}}
    tokens:
      USDC: {{address: "{token}", decimals: 6}}
    block_time_s: 1
    multicall3: {line}
"""


def setup_chain(anvil: Anvil, funded: int, n: int) -> tuple[str, dict[int, int]]:
    """The token, Multicall3 at its address, and money nobody recorded on `funded`
    addresses (even: native, odd: token); returns the token and {index: amount}."""
    token = deploy_token(anvil, "standard", decimals=6, symbol="USDC")
    stand_in = deploy_contract(anvil, "MulticallStandIn")
    anvil.rpc(
        "anvil_setCode",
        balances.MULTICALL3,
        anvil.rpc("eth_getCode", stand_in, "latest"),
    )
    paid = {}
    step = max(n // max(funded, 1), 1)
    for k in range(funded):
        i = (k * step) | 1 if k % 2 else (k * step) & ~1
        if i % 2 == 0:
            anvil.set_balance(address(i), 10**15 + i)
        else:
            mint(anvil, token, address(i), 10**6 + i)
        paid[i] = (10**15 if i % 2 == 0 else 10**6) + i
    anvil.mine(5)
    return token, paid


def seed(name: str, n: int, token: str, now: datetime) -> None:
    def payment(i: int) -> dict[str, Any]:
        native = i % 2 == 0
        return pgdb.pending_payment(
            i,
            asset="ETH" if native else "USDC",
            token=None if native else token,
            decimals=18 if native else 6,
            address=address(i),
            amount=10**15 if native else 10**6,
            now=now,
        )

    pgdb.seed(name, n, address, payment, now)


def run_once(
    url: str, db: str, token: str, multicall: str | None, head: int
) -> dict[str, Any]:
    path = Path(tempfile.mkdtemp()) / "chains.yaml"
    path.write_text(chains_yaml(url, token, multicall))
    cfg = load_chains(path, {})["local"]
    engine = db_engine.make_engine(pgdb.url(db))
    factory = db_engine.session_factory(engine)
    now = datetime.now(UTC)
    with factory() as s, s.begin():
        block = s.get(ScanCursor, "local")
        if block is None:
            s.add(
                ScanCursor(
                    chain="local",
                    block_number=head,
                    block_hash="0x" + "00" * 32,
                    updated_at=now,
                )
            )
    client = EvmChain.open(cfg, timeout_s=60)
    started = time.perf_counter()
    with factory() as s:
        at = reconcile_job.pick_block(s, client, cfg=cfg, at_block=None)
        result = reconcile_job.run(
            s, client, cfg=cfg, now=now, settings=ScanSettings(), block=at
        )
    wall = time.perf_counter() - started
    calls, requests = client.rpc.calls_sent, client.rpc.round_trips
    client.close()
    with engine.connect() as conn:
        credited = conn.execute(
            sa.text("SELECT count(*) FROM transfers WHERE source = 'balance'")
        ).scalar()
    engine.dispose()
    return {
        "method": result.method,
        "balances_read": result.balances_read,
        "addresses": result.addresses,
        "rpc_calls": calls,
        "http_requests": requests,
        "wall_s": round(wall, 2),
        "credited": result.inflows_credited,
        "credited_rows": credited,
        "shortfalls": result.shortfalls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--funded", type=int, default=20)
    args = parser.parse_args()
    now = datetime.now(UTC)
    template = f"ctrip_bench_reconcile_{int(time.time())}"
    out: dict[str, Any] = {"payments": args.payments, "funded": args.funded}
    with Anvil() as anvil:
        token, paid = setup_chain(anvil, args.funded, args.payments)
        seed(template, args.payments, token, now)
        head = anvil.block_number()
        try:
            for label, multicall in (
                ("multicall3", balances.MULTICALL3),
                ("direct", None),
            ):
                db = pgdb.clone(template)
                try:
                    out[label] = run_once(anvil.url, db, token, multicall, head)
                finally:
                    pgdb.drop(db)
        finally:
            pgdb.drop(template)
    m, d = out["multicall3"], out["direct"]
    out["expected_credits"] = len(paid)
    out["calls_ratio_direct_over_multicall"] = round(d["rpc_calls"] / m["rpc_calls"], 1)
    out["wall_ratio_direct_over_multicall"] = round(d["wall_s"] / m["wall_s"], 2)
    out["target_met"] = m["rpc_calls"] <= 300 and m["wall_s"] <= 60
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
