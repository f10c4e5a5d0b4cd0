#!/usr/bin/env python3
"""The one-command demo: the whole payment flow on SQLite and a local anvil node.

It starts anvil on a free port, deploys the test tokens where chains.yaml expects them,
creates payments with a fresh random mnemonic, pays them from an anvil account, runs
scan, confirm, sweep and deliver-webhooks (to a local receiver that verifies every
signature), then shows `ctrip status`. Run it from anywhere: `python scripts/demo.py`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import evm  # noqa: E402  (the anvil helpers the test suite uses)

PASSES = ("scan", "confirm", "sweep", "deliver-webhooks")
# What the demo's customers pay: (asset, amount). Token addresses come from chains.yaml.
ORDERS = (("ETH", "0.5"), ("USDC", "25"), ("DAI", "10.75"))
TOKENS = {"USDC": 6, "DAI": 18}  # deployed in this order: nonces 0 and 1 of account 0
PAYER = evm.ANVIL_ACCOUNTS[1]
TREASURY = evm.ANVIL_ACCOUNTS[9]  # chains.yaml's local treasury


def say(text: str) -> None:
    bold, plain = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
    print(f"\n{bold}== {text}{plain}", flush=True)


class Receiver:
    """A merchant endpoint on 127.0.0.1 that verifies Standard Webhooks signatures."""

    def __init__(self) -> None:
        # A fresh signing secret, shared with ctrip through the environment only.
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.key = base64.b64decode(self.secret.removeprefix("whsec_"))
        self.events: list[dict[str, Any]] = []
        self.rejected = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = receiver.verify(self.headers, body)
                if ok:
                    receiver.events.append(json.loads(body))
                else:
                    receiver.rejected += 1
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verify(self, headers: Any, body: bytes) -> bool:
        """With the Standard Webhooks library when installed, else by the spec."""
        try:
            from standardwebhooks.webhooks import Webhook, WebhookVerificationError
        except ImportError:
            return self._verify_by_hand(headers, body)
        try:
            Webhook(self.secret).verify(body, dict(headers.items()))
        except WebhookVerificationError:
            return False
        return True

    def _verify_by_hand(self, headers: Any, body: bytes) -> bool:
        msg_id, stamp = (
            headers.get("webhook-id", ""),
            headers.get("webhook-timestamp", ""),
        )
        signed = f"{msg_id}.{stamp}.".encode() + body
        expected = base64.b64encode(hmac.new(self.key, signed, hashlib.sha256).digest())
        given = [
            s.split(",", 1)[-1] for s in headers.get("webhook-signature", "").split()
        ]
        return any(hmac.compare_digest(expected.decode(), g) for g in given)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Demo:
    def __init__(self, workdir: Path, anvil: evm.Anvil, receiver: Receiver) -> None:
        from eth_account.hdaccount import generate_mnemonic
        from eth_account.hdaccount.mnemonic import Language

        self.workdir, self.anvil, self.receiver = workdir, anvil, receiver
        # A fresh mnemonic: the public anvil one would make deposit addresses collide
        # with anvil's prefunded accounts. It lives only in this process's environment.
        self.mnemonic = generate_mnemonic(12, Language.ENGLISH)
        self.env = {
            **os.environ,
            "CTRIP_DATABASE_URL": f"sqlite:///{workdir / 'ctrip.db'}",
            "CTRIP_CHAINS_FILE": str(REPO / "chains.yaml"),
            "CTRIP_LOCAL_RPC_URL": anvil.url,
            "CTRIP_MNEMONIC": self.mnemonic,
            "CTRIP_WEBHOOK_URL": receiver.url,
            "CTRIP_WEBHOOK_SECRET": receiver.secret,
            "CTRIP_WEBHOOK_ALLOW_PRIVATE": "true",
            "CTRIP_WEBHOOK_ALLOW_HTTP": "true",
            "CTRIP_MNEMONIC_FILE": "",
            "CTRIP_METRICS_TEXTFILE": str(workdir / "ctrip.prom"),
        }
        self.available = {p: p in commands() for p in PASSES}

    def ctrip(self, *args: str, show: bool = True, check: bool = True) -> Any:
        """Run `ctrip ARGS` as a user would; returns its JSON output when --json."""
        if show:
            print(f"$ ctrip {' '.join(args)}", flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "ctrip_cli", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output="--json" in args or not show,
            text=True,
        )
        if check and proc.returncode != 0:
            sys.stderr.write(proc.stderr or "")
            raise SystemExit(f"demo: `ctrip {' '.join(args)}` exited {proc.returncode}")
        return json.loads(proc.stdout) if "--json" in args else proc.returncode

    def run_pass(self, name: str, *args: str) -> dict[str, Any] | None:
        if not self.available[name]:
            print(f"(skipped: `ctrip {name}` is not in this version yet)")
            return None
        result: dict[str, Any] = self.ctrip(name, *args, "--json")
        numbers = {k: v for k, v in result.items() if isinstance(v, int | str) and v}
        print("  " + json.dumps(numbers)[:300])
        return result

    def statuses(self) -> dict[str, str]:
        """Read straight from the demo's SQLite file (cheaper than a subprocess)."""
        with closing(sqlite3.connect(self.workdir / "ctrip.db")) as db:
            return dict(db.execute("SELECT id, status FROM payments").fetchall())


def commands() -> set[str]:
    """The commands this checkout's `ctrip` has (passes land one by one)."""
    import typer

    from ctrip_cli.cli import app

    return set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def deploy_tokens(anvil: evm.Anvil) -> dict[str, str]:
    chains = (REPO / "chains.yaml").read_text()
    addresses = {}
    for symbol, decimals in TOKENS.items():
        address = evm.deploy_token(anvil, "standard", decimals=decimals, symbol=symbol)
        if address not in chains:
            raise SystemExit(
                f"demo: {symbol} landed at {address}, not where chains.yaml says"
            )
        addresses[symbol] = address
    return addresses


def pay(demo: Demo, tokens: dict[str, str], payments: list[dict[str, Any]]) -> None:
    for p in payments:
        amount = int(p["amount_base_units"])
        if p["asset"] == "ETH":
            evm.send_native(demo.anvil, PAYER, p["address"], amount)
        else:
            evm.mint(demo.anvil, tokens[p["asset"]], PAYER, amount)
            evm.token_transfer(
                demo.anvil, tokens[p["asset"]], PAYER, p["address"], amount
            )
        print(f"  paid {p['amount']} {p['asset']} to {p['address']}")


def fund_gas_payer(demo: Demo) -> None:
    """Token sweeps need gas at the deposit address: the gas payer sends it."""
    from pydantic import SecretStr

    from ctrip_cli.chain.signer import KeyRing
    from ctrip_cli.config import DEFAULT_GAS_PAYER_PATH

    payer = KeyRing(SecretStr(demo.mnemonic)).address(DEFAULT_GAS_PAYER_PATH)
    evm.send_native(demo.anvil, evm.ANVIL_ACCOUNTS[2], payer, 10**18)
    print(f"  gas payer {payer} funded with 1 ETH")


def balances(anvil: evm.Anvil, tokens: dict[str, str]) -> dict[str, int]:
    out = {"ETH": evm.native_balance(anvil, TREASURY)}
    out.update({s: evm.balance_of(anvil, a, TREASURY) for s, a in tokens.items()})
    return out


def flow(demo: Demo, tokens: dict[str, str]) -> None:
    say("schema")
    demo.ctrip("db", "upgrade")
    say("a merchant creates payments (one deposit address each)")
    payments = [
        demo.ctrip(
            "payments", "create", "--chain", "local", "--asset", asset,
            "--amount", amount, "--reference", f"order-{i}", "--json",
        )
        for i, (asset, amount) in enumerate(ORDERS, start=1)
    ]  # fmt: skip
    for p in payments:
        print(f"  {p['id']}: {p['amount']} {p['asset']} to {p['address']}")
    say("customers pay from an anvil account")
    pay(demo, tokens, payments)
    fund_gas_payer(demo)
    say("scan: find the deposits")
    demo.run_pass("scan", "--chain", "local")
    demo.anvil.mine(3)  # local needs 2 confirmations
    say("confirm: deep enough and still canonical")
    demo.run_pass("confirm", "--chain", "local")
    sweep_until_settled(demo)
    say("deliver-webhooks: signed events to the merchant's receiver")
    demo.run_pass("deliver-webhooks", "--time-budget", "20s")
    say("scan again: cron keeps every pass close to the head")
    demo.run_pass("scan", "--chain", "local")


def sweep_until_settled(demo: Demo) -> None:
    """Gas top-up, token transfers, then their confirmations: a few passes."""
    for attempt in range(1, 7):
        say(f"sweep #{attempt}: move confirmed funds to the treasury")
        if demo.run_pass("sweep", "--chain", "local") is None:
            return
        demo.anvil.mine(3)
        if set(demo.statuses().values()) <= {"settled"}:
            return


def report(demo: Demo, before: dict[str, int], after: dict[str, int], t0: float) -> int:
    say("ctrip status")
    demo.ctrip("status")
    healthy = demo.ctrip("status", "--check", show=False, check=False) == 0
    say("result")
    statuses = demo.statuses()
    for symbol, decimals in {"ETH": 18, **TOKENS}.items():
        delta = (after[symbol] - before[symbol]) / 10**decimals
        print(f"  treasury received {delta:,.6f} {symbol}")
    types = sorted({e["type"] for e in demo.receiver.events})
    print(f"  payments: {sorted(statuses.values())}")
    print(
        f"  webhooks: {len(demo.receiver.events)} verified ({', '.join(types)}), "
        f"{demo.receiver.rejected} rejected"
    )
    print(f"  status --check: {'healthy' if healthy else 'unhealthy'}")
    print(f"  done in {time.monotonic() - t0:.1f}s; data in {demo.workdir}")
    ok = all(s == "settled" for s in statuses.values()) and demo.receiver.events
    return (
        0 if ok and not demo.receiver.rejected and all(demo.available.values()) else 1
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=REPO / "demo-data", help="work dir")
    args = parser.parse_args()
    t0 = time.monotonic()
    workdir = args.dir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    receiver = Receiver()
    say("starting a local anvil node and deploying the test tokens")
    with evm.Anvil() as anvil:
        print(f"  anvil at {anvil.url}, webhooks to {receiver.url}")
        tokens = deploy_tokens(anvil)
        print(f"  USDC {tokens['USDC']}, DAI {tokens['DAI']} (as in chains.yaml)")
        demo = Demo(workdir, anvil, receiver)
        before = balances(anvil, tokens)
        flow(demo, tokens)
        code = report(demo, before, balances(anvil, tokens), t0)
    receiver.close()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
