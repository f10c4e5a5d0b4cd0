"""On an OP-stack chain a native sweep is mined but the sweep pass has not recorded
its receipt yet when `reconcile` reads the deposit address. The ledger's range for
a sweep in flight allows for `gas_limit x max_fee_per_gas` of fee only, not the L1
data fee the transaction also pays (and for which the sweep reserved
`l1_fee_reserved`): the address holds exactly that L1 fee less than the range
allows, and an open shortfall ("funds moved by a transaction ctrip did not sign")
makes `status --check` unhealthy until the next sweep pass. On OP mainnet, where
the L2 base fee is tiny and the L1 fee dominates, every native sweep does this."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctrip_cli.chain import balances
from tests.attack_reconcile.conftest import ETH, AttackWorld, gas_payer
from tests.conftest import TEST_MNEMONIC_OWN
from tests.evm import ANVIL_ACCOUNTS, Anvil, deploy_contract, send_native
from tests.hostile.hostile_node import HostileNode
from tests.integration.evm.test_sweep_l2 import deploy_test_tokens, set_l1_fees

pytestmark = [pytest.mark.e2e, pytest.mark.evm]


@pytest.fixture
def op_world(db_url: str, tmp_path: Path) -> Iterator[AttackWorld]:
    node = Anvil(extra_args=("--network", "optimism"))
    try:
        set_l1_fees(node, l1_base_fee=5_000 * 10**9)  # an L1 fee spike
        tokens = deploy_test_tokens(node)
        send_native(node, ANVIL_ACCOUNTS[0], gas_payer(), 10 * ETH)
        stand_in = deploy_contract(node, "MulticallStandIn")
        code = node.rpc("eth_getCode", stand_in, "latest")
        node.rpc("anvil_setCode", balances.MULTICALL3, code)
        with HostileNode(node.url) as proxy:
            env = {
                "PATH": os.environ.get("PATH", ""),
                "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
                "CTRIP_DATABASE_URL": db_url,
                "CTRIP_CHAINS_FILE": str(tmp_path / "chains.yaml"),
                "CTRIP_MNEMONIC": TEST_MNEMONIC_OWN,
                "COLUMNS": "200",
            }
            start = node.block_number() + 1
            w = AttackWorld(node, tokens, proxy, env, db_url, tmp_path, start)
            w.yaml("    fee_model: op-stack")
            yield w
    finally:
        node.stop()


def test_a_mined_unrecorded_native_sweep_is_no_shortfall(op_world: AttackWorld) -> None:
    w = op_world
    w.confirmed_native("1", ETH)
    w.ok("sweep")  # broadcast; anvil mines it at once; no receipt recorded yet
    assert w.query("SELECT state FROM sweep_transactions") == [("pending",)]

    found = w.round()
    check = w.ctrip("status", "--check")

    assert found["shortfalls"] == 0, found["differences"]
    assert w.open_shortfalls() == []
    assert check.rc == 0, check.out
