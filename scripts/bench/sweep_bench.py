"""Sweep benchmark: N confirmed payments (half native, a quarter USDC, a quarter no-return
USDT) on a fresh anvil; passes and wall time until every payment is settled.

Two modes on identical fresh chains and databases, in the same run:
  pipelined  the real `ctrip sweep` pass: sign, commit, broadcast, next nonce; receipts are
             checked by the next pass
  baseline   the same pass, but it waits for each transaction's receipt before the next
             (a hook after every broadcast polls the node until its mempool is empty)

Between passes the bench acts as the scheduler: with automine it mines `confirmations`
blocks (time passing); with --block-time it sleeps one block time.

    python scripts/bench/sweep_bench.py                      # 200 payments, automine
    python scripts/bench/sweep_bench.py --block-time 1 --baseline-payments 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from ctrip_cli import lifecycle  # noqa: E402
from ctrip_cli.chain.evm import EvmChain  # noqa: E402
from ctrip_cli.chain.signer import KeyRing  # noqa: E402
from ctrip_cli.config import Settings, load_chains  # noqa: E402
from ctrip_cli.db import engine as db_engine  # noqa: E402
from ctrip_cli.db.models import Payment, Transfer  # noqa: E402
from ctrip_cli.jobs import sweep as sweep_job  # noqa: E402
from ctrip_cli.payments import create_payment  # noqa: E402
from tests.evm import ANVIL_ACCOUNTS, Anvil, deploy_token, mint, send_native  # noqa: E402

MNEMONIC = "abandon " * 11 + "about"
TREASURY = "0x1111111111111111111111111111111111111111"
FUNDER = ANVIL_ACCOUNTS[0]


@dataclass
class Outcome:
    mode: str
    payments: int
    passes: int
    wall_s: float
    txs: int

    @property
    def per_payment_ms(self) -> float:
        return 1000 * self.wall_s / self.payments


def _settings(anvil: Anvil, usdc: str, usdt: str, db_url: str, tmp: Path) -> Settings:
    chains = tmp / "chains.yaml"
    chains.write_text(
        f"""
chains:
  local:
    chain_id: 31337
    rpc_urls: ["{anvil.url}"]
    confirmations: 2
    native: {{symbol: ETH, decimals: 18}}
    tokens:
      USDC: {{address: "{usdc}", decimals: 6}}
      USDT: {{address: "{usdt}", decimals: 6}}
    treasury: "{TREASURY}"
"""
    )
    return Settings(
        database_url=SecretStr(db_url),
        chains_file=chains,
        chains=load_chains(chains, {}),
        mnemonic=SecretStr(MNEMONIC.strip()),
    )


def _asset(i: int) -> str:
    return ("ETH", "USDC", "ETH", "USDT")[i % 4]


def _setup(anvil: Anvil, settings: Settings, engine: sa.Engine, n: int) -> list[str]:
    """N confirmed payments whose deposit addresses really hold the funds."""
    now = datetime.now(UTC)
    keys = KeyRing(settings.mnemonic)  # type: ignore[arg-type]
    cfg = settings.chain("local")
    with db_engine.session_factory(engine)() as s, s.begin():
        ids = [
            create_payment(
                s,
                settings,
                chain="local",
                asset=_asset(i),
                amount="1.5",
                now=now,
                keys=keys,
            )["id"]
            for i in range(n)
        ]
    with db_engine.session_factory(engine)() as s, s.begin():
        for pid in ids:
            p = s.get(Payment, pid)
            assert p is not None
            _fund(anvil, s, p, now)
    anvil.mine(cfg.confirmations)
    send_native(anvil, FUNDER, keys.address(settings.sweep.gas_payer_path), 10**20)
    return ids


def _fund(anvil: Anvil, s: Any, p: Payment, now: datetime) -> None:
    if p.token_address is None:
        tx_hash, log_index = send_native(anvil, FUNDER, p.address, p.amount), -1
    else:
        tx_hash, log_index = mint(anvil, p.token_address, p.address, p.amount), 0
    rc = anvil.rpc("eth_getTransactionReceipt", tx_hash)
    s.add(
        Transfer(
            chain="local",
            tx_hash=tx_hash,
            log_index=log_index,
            block_number=int(rc["blockNumber"], 16),
            block_hash=rc["blockHash"],
            from_address=FUNDER,
            to_address=p.address,
            token_address=p.token_address,
            amount=p.amount,
            payment_id=p.id,
            created_at=now,
        )
    )
    p.amount_received = p.amount
    for to, event in (
        ("detected", "payment.detected"),
        ("confirmed", "payment.confirmed"),
    ):
        lifecycle.transition(s, p, to, now=now, reason="bench", event=event)


def _wait_mempool_empty(anvil: Anvil) -> None:
    while int(anvil.rpc("txpool_status")["pending"], 16):
        time.sleep(0.005)


def _passes_until_settled(
    anvil: Anvil,
    settings: Settings,
    engine: sa.Engine,
    n: int,
    *,
    baseline: bool,
    block_time: float | None,
) -> tuple[int, float, int]:
    cfg = settings.chain("local")
    keys = KeyRing.for_chain(settings.mnemonic, cfg)
    hook = (
        (lambda step: _wait_mempool_empty(anvil) if step == "after_broadcast" else None)
        if baseline
        else None
    )
    rpc = EvmChain.open(cfg)
    passes, txs = 0, 0
    started = time.perf_counter()
    try:
        while True:
            passes += 1
            with db_engine.session_factory(engine)() as s:
                result = sweep_job.run(
                    s,
                    rpc,
                    cfg=cfg,
                    keys=keys,
                    now=datetime.now(UTC),
                    settings=settings.sweep,
                    hook=hook,
                )
            txs += result.signed
            with engine.connect() as conn:
                settled = conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(Payment)
                    .where(Payment.status == "settled")
                )
            if settled == n:
                return passes, time.perf_counter() - started, txs
            if passes > 50:
                raise RuntimeError(
                    f"only {settled}/{n} settled after 50 passes: {result}"
                )
            if block_time is None:
                anvil.mine(cfg.confirmations)
            else:
                time.sleep(block_time)
    finally:
        rpc.close()


def run_mode(mode: str, n: int, block_time: float | None, db: str) -> Outcome:
    # Set up on automine (fast), then switch to interval mining for the sweep itself.
    with Anvil() as anvil, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        usdc = deploy_token(anvil, "standard", decimals=6, symbol="USDC")
        usdt = deploy_token(anvil, "noreturn", decimals=6, symbol="USDT")
        db_url = _db_url(db, tmp)
        engine = db_engine.make_engine(db_url)
        db_engine.upgrade(engine)
        settings = _settings(anvil, usdc, usdt, db_url, tmp)
        ids = _setup(anvil, settings, engine, n)
        if block_time:
            anvil.set_automine(False)
            anvil.set_interval_mining(int(block_time))
        passes, wall, txs = _passes_until_settled(
            anvil,
            settings,
            engine,
            len(ids),
            baseline=mode == "baseline",
            block_time=block_time,
        )
        engine.dispose()
        if db == "postgresql":
            _drop_pg(db_url)
        return Outcome(mode, n, passes, wall, txs)


def _db_url(db: str, tmp: Path) -> str:
    if db == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}"
    name = f"ctrip_bench_{int(time.time() * 1000)}"
    admin = sa.create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def _drop_pg(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument(
        "--baseline-payments", type=int, default=None, help="default: --payments"
    )
    parser.add_argument(
        "--block-time", type=float, default=None, help="anvil interval mining"
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    results = [
        run_mode("pipelined", args.payments, args.block_time, args.db),
        run_mode(
            "baseline",
            args.baseline_payments or args.payments,
            args.block_time,
            args.db,
        ),
    ]
    chain = (
        f"anvil --block-time {args.block_time}" if args.block_time else "anvil automine"
    )
    print(f"sweep bench: {chain}, {args.db}, confirmations 2")
    print(
        f"{'mode':<10} {'payments':>8} {'txs':>5} {'passes':>6} {'wall s':>8} {'ms/payment':>11}"
    )
    for r in results:
        print(
            f"{r.mode:<10} {r.payments:>8} {r.txs:>5} {r.passes:>6} {r.wall_s:>8.2f} {r.per_payment_ms:>11.1f}"
        )
    ratio = results[1].per_payment_ms / results[0].per_payment_ms
    print(f"baseline / pipelined time per payment: {ratio:.2f}x")


if __name__ == "__main__":
    main()
