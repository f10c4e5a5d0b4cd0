"""`ctrip confirm` through the CLI: one success and one failure."""

from __future__ import annotations

import json

import pytest

from tests.evm import Anvil

pytestmark = pytest.mark.evm


def test_confirm_json_prints_one_summary_object(ctrip, anvil: Anvil) -> None:
    result = ctrip(
        "confirm", "--chain", "local", "--json", env={"CTRIP_LOCAL_RPC_URL": anvil.url}
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["job"], data["chain"], data["skipped"]) == ("confirm", "local", None)
    assert data["confirmed"] == 0


def test_confirm_unknown_chain_exits_2(ctrip) -> None:
    result = ctrip("confirm", "--chain", "nope")
    assert result.exit_code == 2
    assert "'nope'" in result.stderr
