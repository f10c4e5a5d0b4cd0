"""The CLI's shared edge: help, exit codes, locks reported as skipped, no secrets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import select

from ctrip_cli.cli.runtime import Runtime
from ctrip_cli.db.locks import try_job_lock
from ctrip_cli.db.models import JobRun
from ctrip_cli.jobs import passes
from ctrip_cli.jobs.scan import ScanResult


def test_help_lists_every_pass(ctrip):
    result = ctrip("--help")
    assert result.exit_code == 0
    for command in ("payments", "status", "db", *(p.name for p in passes.REGISTRY)):
        assert command in result.stdout


def test_db_upgrade_is_rerunnable(ctrip):
    assert ctrip("db", "upgrade").exit_code == 0
    assert ctrip("db", "upgrade").exit_code == 0


def test_database_down_exits_1_without_password(ctrip):
    url = "postgresql+psycopg2://ctrip:s3cretpw@127.0.0.1:1/ctrip"
    result = ctrip("payments", "list", env={"CTRIP_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "DatabaseError" in result.stderr
    assert "s3cretpw" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_malformed_chains_file_exits_2_with_location(ctrip, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("chains:\n  bsc:\n    chain_id: fifty-six\n")
    result = ctrip("payments", "list", env={"CTRIP_CHAINS_FILE": str(bad)})
    assert result.exit_code == 2
    assert "chains.bsc.chain_id" in result.stderr


def test_status_json_shape_with_rpc_down(ctrip):
    created = ctrip(
        "payments", "create", "--chain", "local", "--asset", "ETH", "--amount", "1"
    )
    assert created.exit_code == 0
    result = ctrip(
        "status", "--json", env={"CTRIP_LOCAL_RPC_URL": "http://127.0.0.1:9"}
    )
    assert result.exit_code == 0
    status = json.loads(result.stdout)
    assert status["chains"]["local"]["head"] is None
    assert status["payments"] == {"pending": 1}
    assert "webhooks" in status
    assert status["healthy"] is False


def test_run_job_reports_lock_held_as_skipped(cli_env, make_settings):
    from rich.console import Console

    rt = Runtime(
        chains_file=None,
        out=Console(),
        err=Console(stderr=True),
        settings=make_settings(),
    )
    ran = ScanResult(job="scan", chain="local", skipped=None, blocks_scanned=1)
    with try_job_lock(rt.engine, "scan", "local") as held:
        assert held
        result = rt.run_job(passes.SCAN, "local", lambda session: ran)
    assert isinstance(result, ScanResult)
    assert (result.job, result.chain, result.skipped) == ("scan", "local", "lock held")
    assert rt.run_job(passes.SCAN, "local", lambda session: ran) is ran
    with rt.open_session() as session:
        runs = session.execute(select(JobRun.job, JobRun.chain, JobRun.outcome))
        assert sorted(runs) == [("scan", "local", "ok"), ("scan", "local", "skipped")]


@pytest.mark.parametrize("module", ["ctrip_cli.cli", "ctrip_cli.payments"])
def test_cli_does_not_import_web3_up_front(module):
    code = f"import sys, {module}; print('web3' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
