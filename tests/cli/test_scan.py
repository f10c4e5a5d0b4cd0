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


def test_scan_rejects_a_backwards_range(ctrip) -> None:
    result = ctrip("scan", "--chain", "local", "--from-block", "10", "--to-block", "5")
    assert result.exit_code == 2
    assert "--to-block 5" in result.stderr
