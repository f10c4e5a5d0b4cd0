"""`ctrip reconcile` through the CLI: one JSON object and a job_runs row; a block too
shallow exits 2 with nothing written; a lock held is a skipped pass."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from ctrip_cli.db import engine as db_engine
from ctrip_cli.db import locks
from ctrip_cli.db.models import JobRun
from tests.evm import Anvil

pytestmark = [
    pytest.mark.evm,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


def _runs(db_url: str) -> list[tuple[str, str]]:
    engine = db_engine.make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(JobRun.job, JobRun.outcome)).all()
    engine.dispose()
    return [(j, o) for j, o in rows if j == "reconcile"]


def test_reconcile_json_prints_one_summary_object(ctrip, anvil: Anvil, db_url) -> None:
    env = {"CTRIP_LOCAL_RPC_URL": anvil.url}
    anvil.mine(3)
    assert ctrip("scan", "--chain", "local", env=env).exit_code == 0

    result = ctrip("reconcile", "--chain", "local", "--json", env=env)

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["job"], data["chain"], data["skipped"]) == ("reconcile", "local", None)
    assert data["block"] == anvil.block_number() - 2  # confirmations: 2
    assert (data["shortfalls"], data["inflows_credited"]) == (0, 0)
    assert _runs(db_url) == [("reconcile", "ok")]


def test_a_block_not_deep_enough_exits_2_and_writes_nothing(
    ctrip, anvil: Anvil, db_url
) -> None:
    env = {"CTRIP_LOCAL_RPC_URL": anvil.url}
    anvil.mine(3)
    assert ctrip("scan", "--chain", "local", env=env).exit_code == 0
    head = anvil.block_number()

    result = ctrip("reconcile", "--chain", "local", "--at-block", str(head), env=env)

    assert result.exit_code == 2
    assert f"--at-block {head}" in result.stderr
    assert "confirmations (2) deep" in result.stderr
    assert "Traceback" not in result.output
    assert _runs(db_url) == []


def test_a_held_lock_is_a_skipped_pass(ctrip, anvil: Anvil, db_url) -> None:
    env = {"CTRIP_LOCAL_RPC_URL": anvil.url}
    anvil.mine(3)
    assert ctrip("scan", "--chain", "local", env=env).exit_code == 0
    engine = db_engine.make_engine(db_url)
    try:
        with locks.try_job_lock(engine, locks.JobLock.RECONCILE, "local") as held:
            assert held
            result = ctrip("reconcile", "--chain", "local", "--json", env=env)
    finally:
        engine.dispose()

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["job"], data["chain"], data["skipped"]) == (
        "reconcile",
        "local",
        "lock held",
    )
    assert _runs(db_url) == [("reconcile", "skipped")]
