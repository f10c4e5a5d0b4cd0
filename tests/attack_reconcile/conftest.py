"""A world for attacking `ctrip reconcile` from outside: anvil behind a hostile
JSON-RPC proxy, the CLI as subprocesses (`python -m ctrip_cli`), SQLite or
PostgreSQL, Multicall3's stand-in at its canonical address."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from ctrip_cli.chain import balances
from ctrip_cli.chain.signer import KeyRing
from ctrip_cli.config import DEFAULT_GAS_PAYER_PATH
from tests.conftest import TEST_MNEMONIC_OWN
from tests.evm import ANVIL_ACCOUNTS, Anvil, deploy_contract, mint, send_native
from tests.evm_fixtures import TestTokens
from tests.hostile.hostile_node import HostileNode
from tests.hostile.test_rpc_attacks import World, _chains_yaml

ETH = 10**18


class AttackWorld(World):
    def yaml(self, extra: str = "") -> None:
        chains = _chains_yaml(self.node.url, self.tokens, self.start, extra)
        Path(self.env["CTRIP_CHAINS_FILE"]).write_text(chains)

    def confirmed_native(self, amount: str, wei: int) -> dict[str, Any]:
        """A native payment paid with `wei`, scanned deep and confirmed."""
        p = self.create("ETH", amount)
        send_native(self.anvil, ANVIL_ACCOUNTS[1], p["address"], wei)
        self.round()
        self.anvil.mine(3)
        self.ok("scan")
        self.ok("confirm")
        return p

    def reconcile(self, *args: str) -> Any:
        return self.ctrip("reconcile", "--chain", "local", "--json", *args)

    def ok(self, *args: str) -> dict[str, Any]:
        done = self.ctrip(*args, "--chain", "local", "--json")
        assert done.rc == 0, (args, done)
        assert "Traceback" not in done.err
        out: dict[str, Any] = done.json()
        return out

    def round(self) -> dict[str, Any]:
        """Mine past confirmations, scan, reconcile, confirm; the reconcile's result."""
        self.anvil.mine(3)
        self.ok("scan")
        found = self.ok("reconcile")
        self.ok("confirm")
        return found

    def differences(self) -> list[Any]:
        return self.query(
            "SELECT kind, resolution, amount, address, note FROM reconcile_differences "
            "ORDER BY id"
        )

    def open_shortfalls(self) -> list[Any]:
        return [d for d in self.differences() if d[0] == "shortfall" and d[1] == "open"]

    def payment_row(self, pid: str) -> tuple[str, int, int]:
        ((status, received, swept),) = self.query(
            "SELECT status, amount_received, amount_swept FROM payments WHERE id = :p",
            p=pid,
        )
        return str(status), int(received), int(swept)


def gas_payer() -> str:
    return KeyRing(SecretStr(TEST_MNEMONIC_OWN)).address(DEFAULT_GAS_PAYER_PATH)


@pytest.fixture
def aw(
    anvil_snapshot: Anvil, tokens: TestTokens, db_url: str, tmp_path: Path
) -> Iterator[AttackWorld]:
    mint(anvil_snapshot, tokens.usdc, ANVIL_ACCOUNTS[1], 10**15)
    send_native(anvil_snapshot, ANVIL_ACCOUNTS[0], gas_payer(), 10 * ETH)
    stand_in = deploy_contract(anvil_snapshot, "MulticallStandIn")
    code = anvil_snapshot.rpc("eth_getCode", stand_in, "latest")
    anvil_snapshot.rpc("anvil_setCode", balances.MULTICALL3, code)
    with HostileNode(anvil_snapshot.url) as node:
        chains = tmp_path / "chains.yaml"
        start = anvil_snapshot.block_number() + 1
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "CTRIP_DATABASE_URL": db_url,
            "CTRIP_CHAINS_FILE": str(chains),
            "CTRIP_MNEMONIC": TEST_MNEMONIC_OWN,
            "COLUMNS": "200",
        }
        world = AttackWorld(anvil_snapshot, tokens, node, env, db_url, tmp_path, start)
        world.yaml()
        yield world
