"""The whole flow through limited endpoints, as an operator runs it: `ctrip payments
create`, `scan`, `confirm`, `sweep` and `status` as subprocesses against anvil behind
the provider emulator. Native, 6-decimal, 18-decimal and no-return token payments all
reach `settled`, and the treasury holds the money."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from ctrip_cli.chain.signer import KeyRing
from ctrip_cli.config import to_checksum
from scripts.emulator import Emulator
from tests.conftest import TEST_MNEMONIC_OWN
from tests.evm import (
    Anvil,
    balance_of,
    mint,
    native_balance,
    send_native,
    token_transfer,
)
from tests.evm_fixtures import TestTokens
from tests.integration.evm.scan_world import PAYER

pytestmark = [pytest.mark.e2e, pytest.mark.evm]
TREASURY = to_checksum("0x" + "7e" * 20)
ETH = 10**18

PROFILES = [
    ("hosted", {"max_batch_calls": 4, "logs_max_blocks": 3}, "batch_too_large"),
    ("public", {"rate_limit_calls_per_s": 40}, "method_missing"),
    ("no-batch", {}, "no_batching"),
]


def _chains(url: str, tokens: TestTokens) -> str:
    return f"""
chains:
  local:
    chain_id: 31337
    rpc_urls: ["{url}"]
    confirmations: 2
    native: {{symbol: ETH, decimals: 18}}
    tokens:
      USDC: {{address: "{tokens.usdc}", decimals: 6}}
      DAI: {{address: "{tokens.dai}", decimals: 18}}
      USDT: {{address: "{tokens.usdt}", decimals: 6}}
    treasury: "{TREASURY}"
    reorg_depth_blocks: 8
    block_time_s: 1
"""


def _ctrip(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "ctrip_cli", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return json.loads(done.stdout)


@pytest.mark.parametrize(("profile", "overrides", "refusal"), PROFILES)
def test_every_pass_works_through_a_limited_endpoint(
    anvil_snapshot: Anvil,
    tokens: TestTokens,
    sqlite_url: str,
    tmp_path: Path,
    profile: str,
    overrides: dict[str, Any],
    refusal: str | None,
) -> None:
    anvil = anvil_snapshot
    for token in (tokens.usdc, tokens.dai, tokens.usdt):
        mint(anvil, token, PAYER, 10**30)
    payer = KeyRing(SecretStr(TEST_MNEMONIC_OWN)).address("m/44'/60'/1'/0/0")
    send_native(anvil, PAYER, payer, ETH)
    with Emulator(anvil.url, profile, **overrides) as emu:
        chains = tmp_path / "chains.yaml"
        chains.write_text(_chains(emu.url, tokens))
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "CTRIP_DATABASE_URL": sqlite_url,
            "CTRIP_CHAINS_FILE": str(chains),
            "CTRIP_MNEMONIC": TEST_MNEMONIC_OWN,
        }
        asked = {"ETH": ("1.5", 3 * ETH // 2), "USDC": ("12.5", 12_500_000),
                 "DAI": ("3.000000000000000001", 3 * ETH + 1), "USDT": ("7", 7_000_000)}  # fmt: skip
        created = {}
        for asset, (amount, units) in asked.items():
            p = _ctrip(env, "payments", "create", "--chain", "local", "--asset", asset, "--amount", amount)  # fmt: skip
            created[asset] = p
            if asset == "ETH":
                send_native(anvil, PAYER, p["address"], units)
            else:
                token = {"USDC": tokens.usdc, "DAI": tokens.dai, "USDT": tokens.usdt}[
                    asset
                ]
                token_transfer(anvil, token, PAYER, p["address"], units)
        for _ in range(8):
            anvil.mine(3)
            _ctrip(env, "scan", "--chain", "local")
            _ctrip(env, "confirm", "--chain", "local")
            _ctrip(env, "sweep", "--chain", "local")
            listed = {p["id"]: p["status"] for p in _ctrip(env, "payments", "list")}
            states = {a: listed[p["id"]] for a, p in created.items()}
            if set(states.values()) == {"settled"}:
                break
        status = _ctrip(env, "status", "--chain", "local")
        seen = emu.snapshot()
    assert states == dict.fromkeys(asked, "settled"), states
    assert native_balance(anvil, TREASURY) > 0
    assert balance_of(anvil, tokens.usdc, TREASURY) == 12_500_000
    assert balance_of(anvil, tokens.dai, TREASURY) == 3 * ETH + 1
    assert balance_of(anvil, tokens.usdt, TREASURY) == 7_000_000
    chain = status["chains"]["local"]
    assert chain["head"] == anvil.block_number()
    if refusal is not None:
        assert seen["limited"].get(refusal, 0) > 0, seen["limited"]
