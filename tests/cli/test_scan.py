"""`ctrip scan` through the CLI: a success, an RPC failure, a usage error."""

from __future__ import annotations

import json

import pytest

from tests.evm import Anvil

pytestmark = pytest.mark.evm


def test_scan_json_prints_one_summary_object(ctrip, anvil: Anvil) -> None:
    result = ctrip(
        "scan", "--chain", "local", "--json", env={"CTRIP_LOCAL_RPC_URL": anvil.url}
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["job"], data["chain"], data["skipped"]) == ("scan", "local", None)
    assert data["to_block"] == anvil.block_number()


def test_scan_with_unreachable_rpc_exits_1_without_the_url(ctrip) -> None:
    url = "http://127.0.0.1:9/secret-api-key"
    result = ctrip("scan", "--chain", "local", env={"CTRIP_LOCAL_RPC_URL": url})

    assert result.exit_code == 1
    assert "RpcUnavailableError" in result.stderr
    assert "secret-api-key" not in result.output
    assert "127.0.0.1:9" not in result.output


@pytest.mark.parametrize(
    ("command", "job", "chain"),
    [
        (["scan", "--chain", "local"], "scan", "local"),
        (["confirm", "--chain", "local"], "confirm", "local"),
        (["sweep", "--chain", "local"], "sweep", "local"),
        (["reconcile", "--chain", "local"], "reconcile", "local"),
        (["scan", "--chain", "nowhere"], "scan", "nowhere"),
    ],
)
def test_a_failed_pass_with_json_still_prints_its_one_object(
    ctrip, command: list[str], job: str, chain: str
) -> None:
    """`--json` means one JSON object on stdout, a failure too: `error` names it,
    with the exit code the process ends with (1: could not work, 2: bad config)."""
    url = "http://127.0.0.1:9/secret-api-key"
    result = ctrip(*command, "--json", env={"CTRIP_LOCAL_RPC_URL": url})

    assert result.exit_code in (1, 2), result.output
    data = json.loads(result.stdout)
    assert (data["job"], data["chain"], data["skipped"]) == (job, chain, None)
    assert data["error"]["exit_code"] == result.exit_code
    assert data["error"]["type"] in result.stderr
    assert "secret-api-key" not in result.stdout


def test_scan_rejects_a_backwards_range(ctrip) -> None:
    result = ctrip("scan", "--chain", "local", "--from-block", "10", "--to-block", "5")
    assert result.exit_code == 2
    assert "--to-block 5" in result.stderr
