"""`ctrip reconcile` against a node that answers its balance reads with garbage:
it fails cleanly (exit 1, the endpoint named by position, no URL part), writes
nothing, and once the node behaves credits the money found exactly once."""

from __future__ import annotations

from typing import Any

import pytest

from ctrip_cli.chain import balances
from tests.evm import deploy_contract
from tests.hostile.test_rpc_attacks import ETH, World
from tests.hostile.test_rpc_attacks import w as w  # the fixture

pytestmark = [pytest.mark.e2e, pytest.mark.evm]


def _garble(method: str, value: Any) -> Any:
    def per_call(call: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        if call.get("method") == method and "result" in reply:
            return dict(reply, result=value)
        return reply

    return per_call


def _nothing_written(world: World) -> None:
    assert world.query("SELECT count(*) FROM reconcile_differences") == [(0,)]
    assert world.query("SELECT count(*) FROM reconcile_cursors") == [(0,)]
    assert world.query("SELECT count(*) FROM transfers WHERE source IS NOT NULL") == [
        (0,)
    ]


@pytest.mark.parametrize(
    ("multicall", "method", "value"),
    [
        (True, "eth_call", "0x" + "00" * 31 + "20" + "00" * 31 + "07"),  # 7 results
        (True, "eth_call", "0xzz"),
        (True, "eth_getCode", 12),
        (False, "eth_getBalance", "0x-1"),
        (False, "eth_getBalance", None),
    ],
    ids=["aggregate3-count", "aggregate3-hex", "code-number", "balance-sign", "null"],
)
def test_garbled_balance_reads_fail_cleanly_then_credit_once(
    w: World, multicall: bool, method: str, value: Any
) -> None:
    if multicall:
        stand_in = deploy_contract(w.anvil, "MulticallStandIn")
        code = w.anvil.rpc("eth_getCode", stand_in, "latest")
        w.anvil.rpc("anvil_setCode", balances.MULTICALL3, code)
    p = w.create("ETH", "1.5")
    w.anvil.set_balance(p["address"], 3 * ETH // 2)  # coin no transfer shows
    w.anvil.mine(4)
    assert w.scan().rc == 0

    w.node.per_call = _garble(method, value)
    failed = w.ctrip("reconcile", "--chain", "local", "--json")
    failed.clean_failure()
    assert "endpoint #1" in failed.err, failed.err
    _nothing_written(w)
    w.assert_no_secret(failed.out, failed.err)

    w.node.behave()
    done = w.ctrip("reconcile", "--chain", "local", "--json")
    again = w.ctrip("reconcile", "--chain", "local", "--json")
    assert done.rc == 0, done
    assert (done.json()["inflows_credited"], again.json()["inflows_credited"]) == (1, 0)
    assert done.json()["method"] == (
        "multicall3" if multicall else "eth_getBalance+eth_call"
    )
    assert w.payment(p["id"]) == ("detected", 3 * ETH // 2)
