"""The world a campaign runs in: a fresh anvil with test tokens, two fault-injecting RPC
proxies, a fresh PostgreSQL (or SQLite) database, a webhook receiver, and the real
`ctrip` CLI run as subprocesses with a known mnemonic, webhook secret and RPC API key.

Ground truth comes from the chain itself (see `truth.py`), never from ctrip's tables.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ctrip_cli.db import engine as db_engine
from scripts.chaos.receiver import WebhookReceiver
from scripts.chaos.rpc_proxy import RpcProxy
from tests.evm import (
    ANVIL_ACCOUNTS,
    Anvil,
    deploy_token,
    mint,
    send_native,
    token_transfer,
)

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get(
    "CTRIP_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
# Known secrets: the secrets campaign greps every output, log line and text column for them.
MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
WEBHOOK_KEY = base64.b64encode(b"chaos-webhook-key-0123456789abcd").decode()
WEBHOOK_SECRET = f"whsec_{WEBHOOK_KEY}"
RPC_API_KEY = "CHAOSAPIKEY7f3a9c1e"
TREASURY = ANVIL_ACCOUNTS[9]
PAYERS = ANVIL_ACCOUNTS[1:8]
GRIEFER = ANVIL_ACCOUNTS[8]  # holds ETH for gas, none of the tokens
PASSES = ("scan", "confirm", "sweep", "deliver-webhooks")


@dataclass
class CliRun:
    args: list[str]
    rc: int | None  # None: killed
    out: str
    err: str
    seconds: float

    def json(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.out)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


@dataclass
class Asset:
    symbol: str
    token: str | None
    decimals: int


@dataclass
class World:
    """Everything one campaign touches. Build with `World.start(...)`, end with `stop()`."""

    workdir: Path
    db_url: str
    anvil: Anvil
    proxy: RpcProxy
    proxy2: RpcProxy
    receiver: WebhookReceiver
    assets: dict[str, Asset]
    confirmations: int
    rng: random.Random
    env: dict[str, str] = field(default_factory=dict)
    runs: list[CliRun] = field(default_factory=list)
    treasury_start: dict[str, int] = field(default_factory=dict)
    pg_name: str | None = None
    scanned_cells: int = 0
    repeats: list[dict[str, Any]] = field(default_factory=list)

    # -- lifecycle --

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        seed: int,
        database: str = "postgresql",
        confirmations: int = 2,
    ) -> World:
        workdir.mkdir(parents=True, exist_ok=True)
        anvil = Anvil()
        usdc = deploy_token(
            anvil, "standard", decimals=6, symbol="USDC", name="USD Coin"
        )
        dai = deploy_token(anvil, "standard", decimals=18, symbol="DAI", name="Dai")
        for payer in PAYERS:
            mint(anvil, usdc, payer, 10**15)
            mint(anvil, dai, payer, 10**27)
        pg_name, db_url = _database(workdir, database)
        world = cls(
            workdir=workdir,
            db_url=db_url,
            anvil=anvil,
            proxy=RpcProxy(anvil.url).start(),
            proxy2=RpcProxy(anvil.url).start(),
            receiver=WebhookReceiver(WEBHOOK_SECRET),
            assets={
                "ETH": Asset("ETH", None, 18),
                "USDC": Asset("USDC", usdc, 6),
                "DAI": Asset("DAI", dai, 18),
            },
            confirmations=confirmations,
            rng=random.Random(seed),
            pg_name=pg_name,
        )
        world.proxy.seed(seed)
        world.proxy2.seed(seed + 1)
        world._configure()
        return world

    def _configure(self) -> None:
        usdc, dai = self.assets["USDC"].token, self.assets["DAI"].token
        chains = self.workdir / "chains.yaml"
        chains.write_text(
            "chains:\n  local:\n    chain_id: 31337\n"
            '    rpc_urls: ["${CTRIP_CHAOS_RPC_URL}", "${CTRIP_CHAOS_RPC_URL2}"]\n'
            f"    confirmations: {self.confirmations}\n"
            "    native: {symbol: ETH, decimals: 18}\n    tokens:\n"
            f'      USDC: {{address: "{usdc}", decimals: 6}}\n'
            f'      DAI: {{address: "{dai}", decimals: 18}}\n'
            f'    treasury: "{TREASURY}"\n    block_time_s: 1\n'
            "    max_block_range: 25\n    reorg_depth_blocks: 64\n"
        )
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "PYTHONPATH": str(REPO),
            "CTRIP_DATABASE_URL": self.db_url,
            "CTRIP_CHAINS_FILE": str(chains),
            "CTRIP_MNEMONIC": MNEMONIC,
            "CTRIP_WEBHOOK_URL": self.receiver.url,
            "CTRIP_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CTRIP_WEBHOOK_ALLOW_PRIVATE": "true",
            "CTRIP_WEBHOOK_ALLOW_HTTP": "true",
            "CTRIP_DEFAULT_EXPIRES_IN_S": "86400",
            "CTRIP_CHAOS_RPC_URL": f"{self.proxy.url}/?apikey={RPC_API_KEY}",
            "CTRIP_CHAOS_RPC_URL2": f"{self.proxy2.url}/?apikey={RPC_API_KEY}",
            "COLUMNS": "200",
        }
        engine = db_engine.make_engine(self.db_url)
        db_engine.upgrade(engine)
        engine.dispose()
        # The gas payer (m/44'/60'/1'/0/0) funds token sweeps' gas.
        from pydantic import SecretStr

        from ctrip_cli.chain.signer import KeyRing

        keys = KeyRing(SecretStr(MNEMONIC))
        # A real transaction, not anvil_setBalance: anvil_reorg replays blocks and would
        # drop a balance that no block carries.
        send_native(
            self.anvil, ANVIL_ACCOUNTS[8], keys.address("m/44'/60'/1'/0/0"), 10**21
        )
        # Bury the set-up below any reorg a campaign makes (depth <= confirmations + 2),
        # so a reorg never drops the gas payer's funding or the test tokens.
        self.mine(self.confirmations + 8)
        self.treasury_start = self.treasury_balances()

    def admin_url(self) -> str:
        return PG_ADMIN_URL

    def stop(self) -> None:
        self.proxy.stop()
        self.proxy2.stop()
        self.receiver.stop()
        self.anvil.stop()
        if self.pg_name:
            admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(
                    sa.text(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
                )
            admin.dispose()

    # -- the CLI --

    def cli(self, *args: str, timeout_s: float = 180, verbose: bool = False) -> CliRun:
        """Run `ctrip ARGS` to completion as a subprocess."""
        proc = self.spawn(*args, verbose=verbose)
        return self.finish(proc, args, timeout_s=timeout_s)

    def cli_inproc(self, *args: str) -> CliRun:
        """Run `ctrip ARGS` in this process (no interpreter start-up): for setting up
        and settling, never for the runs a campaign injects faults into."""
        from typer.testing import CliRunner

        from ctrip_cli.cli import app

        started = time.monotonic()
        result = CliRunner().invoke(
            app, list(args), env=self.env, catch_exceptions=True
        )
        err = result.stderr
        if result.exception is not None and not isinstance(
            result.exception, SystemExit
        ):
            err += "\nTraceback (in-process): " + "".join(
                traceback.format_exception(result.exception)
            )
        run = CliRun(
            list(args), result.exit_code, result.stdout, err, time.monotonic() - started
        )
        self.runs.append(run)
        gc.collect()  # the CLI's engines are not disposed: free their connections now
        return run

    def spawn(self, *args: str, verbose: bool = False) -> subprocess.Popen[str]:
        argv = [
            sys.executable,
            "-m",
            "ctrip_cli",
            *(["--verbose"] if verbose else []),
            *args,
        ]
        proc = subprocess.Popen(
            argv,
            env=self.env,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        proc.started = time.monotonic()  # type: ignore[attr-defined]
        return proc

    def finish(
        self,
        proc: subprocess.Popen[str],
        args: tuple[str, ...] | list[str],
        *,
        timeout_s: float,
    ) -> CliRun:
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            err += f"\n[chaos] killed after {timeout_s}s timeout"
        rc = proc.returncode
        run = CliRun(
            list(args),
            None if rc == -signal.SIGKILL else rc,
            out,
            err,
            time.monotonic() - proc.started,  # type: ignore[attr-defined]
        )
        self.runs.append(run)
        return run

    def kill_after(
        self, proc: subprocess.Popen[str], delay_s: float, args: tuple[str, ...]
    ) -> CliRun:
        """SIGKILL the run after `delay_s` (if it is still running)."""
        try:
            proc.wait(timeout=delay_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        return self.finish(proc, args, timeout_s=60)

    # -- payments and funding (ground truth is what we send) --

    def create_payments(
        self, n: int, *, expires_in: str | None = None
    ) -> list[dict[str, Any]]:
        """n payments over ETH, USDC and DAI through `ctrip payments create --json`."""
        created = []
        for _ in range(n):
            symbol = self.rng.choice(list(self.assets))
            amount = {"ETH": "0.05", "USDC": "12.5", "DAI": "7"}[symbol]
            expiry = [] if expires_in is None else ["--expires-in", expires_in]
            run = self.cli(
                "payments",
                "create",
                "--chain",
                "local",
                "--asset",
                symbol,
                "--amount",
                amount,
                *expiry,
                "--reference",
                f"chaos-{uuid.uuid4().hex[:8]}",
                "--json",
            )
            payment = run.json()
            if run.rc != 0 or payment is None:
                raise RuntimeError(f"payments create failed: {run.err[-500:]}")
            created.append(payment)
        return created

    def fund(self, payment: dict[str, Any]) -> str:
        """Pay exactly, over, under, in two parts, twice (a second payment to the same
        address), with griefing zero-value and dust transfers around an exact payment,
        or not at all; returns the scenario."""
        scenario = self.rng.choice(
            ["exact", "over", "under", "split", "none", "exact", "repeated", "grief"]
        )
        amount = int(payment["amount_base_units"])
        parts = {
            "exact": [amount],
            "over": [amount + amount // 3],
            "under": [amount // 2],
            "split": [amount // 2, amount - amount // 2],
            "none": [],
            "repeated": [amount],  # and once more after it settled (`repeat`)
            "grief": [amount],
        }[scenario]
        for value in parts:
            self.send(payment["asset"], payment["address"], value)
        if scenario == "repeated":
            self.repeats.append(payment)
        if scenario == "grief":
            self.grief(payment)
        return scenario

    def fund_late(self, payment: dict[str, Any]) -> str:
        """After the payment's deadline (by the chain's clock): in full, or short and
        then the rest, or short only (an expired, underpaid payment held for a refund)."""
        scenario = self.rng.choice(["late", "late-partial", "late-short"])
        amount = int(payment["amount_base_units"])
        parts = {
            "late": [amount],
            "late-partial": [amount * 3 // 10, amount - amount * 3 // 10],
            "late-short": [amount * 3 // 10],
        }[scenario]
        for value in parts:
            self.send(payment["asset"], payment["address"], value)
        return scenario

    def repeat(self) -> int:
        """Pay the `repeated` payments again, once each (now settled or about to be)."""
        for payment in self.repeats:
            self.send(
                payment["asset"], payment["address"], int(payment["amount_base_units"])
            )
        n, self.repeats = len(self.repeats), []
        return n

    def grief(self, payment: dict[str, Any]) -> None:
        """`transfer(deposit, 0)` from an account holding none of the token, a 0 ETH
        transaction, and one base unit: none may hold the payment back."""
        token = self.assets[payment["asset"]].token
        if token is not None:
            token_transfer(self.anvil, token, GRIEFER, payment["address"], 0)
        send_native(self.anvil, GRIEFER, payment["address"], 0)
        self.send(payment["asset"], payment["address"], 1)

    def send(self, symbol: str, to: str, value: int) -> str:
        payer = self.rng.choice(PAYERS)
        token = self.assets[symbol].token
        if token is None:
            return send_native(self.anvil, payer, to, value)
        return token_transfer(self.anvil, token, payer, to, value)

    def mine(self, n: int = 1) -> None:
        self.anvil.mine(n)

    # -- database --

    def engine(self) -> sa.Engine:
        return db_engine.make_engine(self.db_url)

    def query(self, sql: str, **params: Any) -> list[Any]:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params))
        finally:
            engine.dispose()

    def fast_forward(self) -> None:
        """Make retry-waiting and leased webhook events due now: the harness does not
        wait out the 5 s..10 h retry ladder or a killed run's lease."""
        engine = self.engine()
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE webhook_events SET next_attempt_at = :t, lease_until = NULL "
                        "WHERE status NOT IN ('delivered', 'failed')"
                    ),
                    {"t": _epoch()},
                )
        finally:
            engine.dispose()

    def treasury_balances(self) -> dict[str, int]:
        from tests.evm import balance_of, native_balance

        out = {"ETH": native_balance(self.anvil, TREASURY)}
        for symbol, asset in self.assets.items():
            if asset.token:
                out[symbol] = balance_of(self.anvil, asset.token, TREASURY)
        return out


def _epoch() -> Any:
    from datetime import UTC, datetime

    return datetime(2000, 1, 1, tzinfo=UTC)


def _database(workdir: Path, database: str) -> tuple[str | None, str]:
    if database == "sqlite":
        return None, f"sqlite:///{workdir / 'ctrip.db'}"
    name = f"ctrip_chaos_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(
        False
    )


def cleanup_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
