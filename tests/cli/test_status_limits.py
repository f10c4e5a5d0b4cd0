"""`ctrip status` shows what the passes learnt about each endpoint's limits (kept in the
database by a hash of the URL, never the URL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ctrip_cli.chain.limits import EndpointLimits, endpoint_key
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db import rpc_limits
from tests.evm import Anvil


def test_status_shows_the_learnt_limits_of_each_endpoint(
    ctrip, cli_env, anvil: Anvil
) -> None:
    url = anvil.url
    learnt = EndpointLimits(
        max_batch=100, logs_refused=True, unsupported=["eth_getBlockReceipts"]
    )
    engine = db_engine.make_engine(cli_env["CTRIP_DATABASE_URL"])
    rpc_limits.save(
        engine, "local", {endpoint_key(url): learnt.to_json()}, datetime.now(UTC)
    )
    rows = rpc_limits.load(engine, "local")
    engine.dispose()
    assert set(rows) == {endpoint_key(url)}
    assert url not in json.dumps(rows)

    env = {"CTRIP_LOCAL_RPC_URL": url, "COLUMNS": "300"}
    shown = ctrip("status", "--chain", "local", "--json", env=env)
    (endpoint,) = json.loads(shown.stdout)["chains"]["local"]["endpoints"]
    assert endpoint["ok"] is True
    assert endpoint["limits"] == {
        "max_batch": 100,
        "eth_getLogs": "refused",
        "unsupported": ["eth_getBlockReceipts"],
    }
    from ctrip_cli.cli.status import _limits

    assert _limits(endpoint["limits"]) == (
        " (eth_getLogs refused; max batch 100; unsupported eth_getBlockReceipts)"
    )
