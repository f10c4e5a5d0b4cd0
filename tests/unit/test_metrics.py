"""`metrics`: the exposition of a status snapshot parses and carries its numbers."""

from __future__ import annotations

import sys
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from ctrip_cli import metrics
from ctrip_cli.config import StatusSettings
from ctrip_cli.db.models import JobRun, ScanCursor, WebhookEvent
from ctrip_cli.jobs import status as status_job
from ctrip_cli.payments import create_payment


def _snapshot(session, settings, now):
    with session.begin():
        create_payment(
            session, settings, chain="local", asset="USDC", amount="2", now=now
        )
        session.add_all(
            [
                ScanCursor(
                    chain="local", block_number=90, block_hash="0x0", updated_at=now
                ),
                JobRun(
                    job="scan",
                    chain="local",
                    started_at=now - timedelta(seconds=3),
                    finished_at=now - timedelta(seconds=1),
                    outcome="ok",
                    summary='{"to_block": 90, "deposits_found": 4, "skipped": null}',
                ),
                JobRun(
                    job="scan",
                    chain="local",
                    started_at=now - timedelta(seconds=60),
                    finished_at=now - timedelta(seconds=59),
                    outcome="error",
                    error="RpcUnavailableError: no endpoint answered",
                ),
                WebhookEvent(
                    id="msg_1",
                    type="payment.detected",
                    body="{}",
                    status="failed",
                    attempts=8,
                    next_attempt_at=now,
                    created_at=now,
                ),
            ]
        )
    endpoints = {
        "local": [
            status_job.Endpoint(
                "#1 a", ok=True, head=100, head_timestamp=1, latency_ms=12
            ),
            status_job.Endpoint("endpoint #2", ok=False, error="ConnectTimeout"),
        ]
    }
    gas = {"local": status_job.GasPayer("0x" + "22" * 20, balance_wei=5 * 10**17)}
    return status_job.run(
        session,
        endpoints,
        chains=settings.chains,
        now=now,
        settings=StatusSettings(),
        gas_payers=gas,
    )


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_exposition_parses_and_carries_the_numbers(session, settings, now):
    samples = _samples(metrics.exposition(_snapshot(session, settings, now)))

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    local = {"chain": "local"}
    assert value("ctrip_chain_lag_blocks", **local) == 10
    assert value("ctrip_chain_lag_seconds", **local) == 10
    assert value("ctrip_rpc_endpoint_up", **local, endpoint="#1 a") == 1
    assert value("ctrip_rpc_endpoint_up", **local, endpoint="endpoint #2") == 0
    assert (
        value("ctrip_rpc_endpoint_latency_seconds", **local, endpoint="#1 a") == 0.012
    )
    assert value("ctrip_payments", **local, status="pending") == 1
    assert value("ctrip_webhook_outbox", state="failed") == 1
    assert value("ctrip_gas_payer_balance", **local) == 0.5
    scan = {**local, "pass": "scan"}
    assert value("ctrip_pass_recent_runs", **scan, outcome="ok") == 1
    assert value("ctrip_pass_recent_runs", **scan, outcome="error") == 1
    assert value("ctrip_pass_recent_duration_seconds", **scan, stat="avg") == 1.5
    assert value("ctrip_pass_recent_duration_seconds", **scan, stat="max") == 2
    assert value("ctrip_pass_last_result", **scan, field="deposits_found") == 4
    # The failure started earlier: the last run is the success.
    assert value("ctrip_pass_last_ok", **scan) == 1
    assert value("ctrip_healthy") == 0
    assert not any("job" in dict(labels) for _, labels in samples)


def test_textfile_is_written_atomically(session, settings, now, tmp_path):
    target = tmp_path / "out" / "ctrip.prom"
    target.parent.mkdir()
    target.write_text("old\n")
    metrics.write_textfile(target, _snapshot(session, settings, now))
    assert _samples(target.read_text())[("ctrip_problems", ())] >= 1
    assert [p.name for p in target.parent.iterdir()] == ["ctrip.prom"]


def test_prometheus_client_is_imported_lazily():
    import subprocess

    code = "import sys, ctrip_cli.cli; print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
