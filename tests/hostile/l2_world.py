"""A hostile OP-stack world driven only through the CLI: an `anvil --network optimism`
node on a free port, its L1Block fee slots under the test's control, a fresh SQLite
database and a chains.yaml, and `python -m ctrip_cli ...` subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ctrip_cli.chain.signer import KeyRing
from tests.evm import (
    ANVIL_ACCOUNTS,
    Anvil,
    deploy_token,
    mint,
    native_balance,
    send_native,
    token_transfer,
)
from tests.integration.evm.test_sweep_l2 import (
    BLOB_BASE_FEE,
    L1_BASE_FEE,
    set_l1_fees,
)

REPO = Path(__file__).resolve().parents[2]
FUNDER = ANVIL_ACCOUNTS[0]
TREASURY = ANVIL_ACCOUNTS[9]
# A mnemonic of its own: the anvil one would collide with the prefunded accounts.
MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"

set_l1 = set_l1_fees  # the L1Block fee slots, as test_sweep_l2 writes them
__all__ = ["BLOB_BASE_FEE", "L1_BASE_FEE", "CliWorld", "set_l1", "wei"]


@dataclass
class CliWorld:
    tmp: Path
    extra_yaml: dict[str, Any] = field(default_factory=dict)
    url: str | None = None
    env_extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.node = Anvil(extra_args=("--network", "optimism"))
        set_l1(self.node)
        self.usdc = deploy_token(self.node, "standard", decimals=6, symbol="USDC")
        self.db = self.tmp / "ctrip.db"
        self.chains = self.tmp / "chains.yaml"
        self.write_yaml()
        self.keys = KeyRing(SecretStr(MNEMONIC))
        out = self.ctrip("db", "upgrade", json_out=False)
        assert out.returncode == 0, out.stderr

    def write_yaml(self, **override: Any) -> None:
        extra = {"fee_model": "op-stack", **self.extra_yaml, **override}
        lines = "".join(f"    {k}: {v}\n" for k, v in extra.items())
        self.chains.write_text(
            f"""
chains:
  local:
    chain_id: 31337
    rpc_urls: ["{self.url or self.node.url}"]
    confirmations: 2
    native: {{symbol: ETH, decimals: 18}}
    tokens:
      USDC: {{address: "{self.usdc}", decimals: 6}}
    treasury: '{TREASURY}'
    block_time_s: 1
{lines}"""
        )

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", ""),
            "PYTHONPATH": str(REPO),
            "CTRIP_DATABASE_URL": f"sqlite:///{self.db}",
            "CTRIP_CHAINS_FILE": str(self.chains),
            "CTRIP_MNEMONIC": MNEMONIC,
            **self.env_extra,
        }

    def ctrip(
        self, *args: str, json_out: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "ctrip_cli", *args]
        if json_out:
            cmd.append("--json")
        return subprocess.run(
            cmd,
            env={**self.env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            cwd=self.tmp,
        )

    def j(self, *args: str, **kw: Any) -> Any:
        proc = self.ctrip(*args, **kw)
        assert "Traceback" not in proc.stderr, proc.stderr
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise AssertionError(
                f"{args}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            ) from None

    # -- payments --

    def create(self, asset: str, amount: str) -> dict[str, Any]:
        out = self.j(
            "payments",
            "create",
            "--chain",
            "local",
            "--asset",
            asset,
            "--amount",
            amount,
            "--expires-in",
            "1d",
        )
        return out  # type: ignore[no-any-return]

    def pay_native(self, address: str, wei: int) -> None:
        send_native(self.node, FUNDER, address, wei)

    def pay_usdc(self, address: str, units: int) -> None:
        mint(self.node, self.usdc, FUNDER, units)
        token_transfer(self.node, self.usdc, FUNDER, address, units)

    def scan_confirm(self) -> None:
        self.node.mine(3)
        for cmd in ("scan", "confirm"):
            proc = self.ctrip(cmd, "--chain", "local")
            assert proc.returncode == 0, (cmd, proc.stdout, proc.stderr)

    def sweep(self, *extra: str, env: dict[str, str] | None = None) -> Any:
        proc = self.ctrip("sweep", "--chain", "local", *extra, env=env)
        assert "Traceback" not in proc.stderr, proc.stderr
        try:
            out = json.loads(proc.stdout)
        except json.JSONDecodeError:
            out = None
        return proc.returncode, out, proc.stderr

    def payment(self, pid: str) -> Any:
        return self.j("payments", "show", pid)

    def balance(self, address: str) -> int:
        return native_balance(self.node, address)

    def payer(self) -> str:
        return self.keys.address("m/44'/60'/1'/0/0")

    def stop(self) -> None:
        self.node.stop()


def wei(eth: str) -> int:
    return int(Decimal(eth) * 10**18)
