"""`jobs.status`: each unhealthy case `status --check` must catch, from real DB rows."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from ctrip_cli.config import StatusSettings
from ctrip_cli.db.models import (
    JobRun,
    Payment,
    ScanCursor,
    SweepTransaction,
    WebhookEvent,
)
from ctrip_cli.jobs import status as status_job
from ctrip_cli.jobs.status import Endpoint
from ctrip_cli.payments import create_payment

STATUS = StatusSettings(interval_s=60, stale_factor=5, sweep_stuck_s=900)
ADDR = "0x" + "11" * 20


def _up(head: int, label: str = "#1 127.0.0.1:8545") -> Endpoint:
    return Endpoint(label, ok=True, head=head, head_timestamp=1, latency_ms=3)


def _down(label: str = "#2 node.example") -> Endpoint:
    return Endpoint(label, ok=False, error="ConnectError")


def _add(session, *rows) -> None:
    with session.begin():
        session.add_all(rows)


def _payment(session, settings, now, **kw) -> dict:
    args = {"chain": "local", "asset": "ETH", "amount": "1", **kw}
    with session.begin():
        return create_payment(session, settings, now=now, **args)


def _cursor(chain: str, block: int, now) -> ScanCursor:
    return ScanCursor(
        chain=chain, block_number=block, block_hash="0x00", updated_at=now
    )


def _run(job: str, chain: str, outcome: str, at, *, error: str | None = None):
    return JobRun(
        job=job,
        chain=chain,
        started_at=at - timedelta(seconds=2),
        finished_at=at,
        outcome=outcome,
        summary=json.dumps({"job": job, "found": 3}) if outcome == "ok" else None,
        error=error,
    )


def _sweep(purpose: str, state: str, at, *, nonce: int, replaces: int | None = None):
    return SweepTransaction(
        chain="local",
        purpose=purpose,
        kind="native",
        key_path="m/44'/60'/0'/0/0",
        from_address=ADDR,
        to_address=ADDR,
        amount=10**18,
        nonce=nonce,
        gas_limit=21_000,
        max_fee_per_gas=10**9,
        raw_tx="0x02",
        tx_hash="0x" + f"{purpose}{state}{nonce}".encode().hex().ljust(64, "0")[:64],
        state=state,
        replaces_id=replaces,
        created_at=at,
        updated_at=at,
    )


def _event(status: str, due, *, attempts: int = 0) -> WebhookEvent:
    return WebhookEvent(
        id=f"msg_{status}_{attempts}_{due.timestamp()}",
        type="payment.detected",
        url="https://merchant.example/hook",
        body="{}",
        status=status,
        attempts=attempts,
        attempts_in_round=attempts,
        next_attempt_at=due,
        created_at=due,
    )


def _status(session, settings, now, endpoints=None, status=STATUS):
    return status_job.run(
        session,
        endpoints if endpoints is not None else {"local": [_up(1_000)]},
        chains=settings.chains,
        now=now,
        settings=status,
    )


def _healthy_base(session, settings, now) -> None:
    _payment(session, settings, now)
    _add(session, _cursor("local", 990, now), _run("scan", "local", "ok", now))


def test_healthy_system_has_no_problems(session, settings, now):
    _healthy_base(session, settings, now)
    result = _status(session, settings, now)
    assert result.healthy, result.problems
    local = result.chains["local"]
    assert (local.head, local.cursor, local.lag_blocks, local.lag_s) == (
        1000,
        990,
        10,
        10.0,
    )
    assert local.rpc == "up"
    assert result.payments == {"pending": 1}
    assert result.passes["scan:local"].last_summary == {"job": "scan", "found": 3}
    assert result.passes["scan:local"].last_duration_s == pytest.approx(2.0)


def test_lag_over_the_limit_is_a_problem(session, settings, now):
    _healthy_base(session, settings, now)
    # local has block_time_s 1: the limit is max(50, 300 s / 1 s) = 300 blocks.
    result = _status(session, settings, now, {"local": [_up(990 + 301)]})
    assert not result.healthy
    assert result.chains["local"].max_lag_blocks == 300
    assert any("lags 301 blocks" in p for p in result.problems), result.problems
    assert _status(session, settings, now, {"local": [_up(990 + 300)]}).healthy


def test_per_chain_max_lag_blocks_overrides(make_settings, session, now):
    yaml = """
chains:
  local:
    chain_id: 31337
    rpc_urls: ["http://127.0.0.1:9"]
    native: {symbol: ETH, decimals: 18}
    block_time_s: 1
    max_lag_blocks: 5
"""
    settings = make_settings(chains_yaml=yaml)
    _healthy_base(session, settings, now)
    result = _status(session, settings, now, {"local": [_up(996)]})
    assert any("lags 6 blocks" in p for p in result.problems)


def test_stale_pass_is_a_problem(session, settings, now):
    _healthy_base(session, settings, now)
    _add(
        session,
        _run("confirm", "local", "ok", now - timedelta(minutes=6)),
        _run("confirm", "local", "error", now, error="RpcUnavailableError: no node"),
    )
    result = _status(session, settings, now)
    assert not result.healthy
    (problem,) = result.problems
    assert problem.startswith("pass confirm:local: no success for 6m00s (limit 5m00s)")
    assert "RpcUnavailableError: no node" in problem


def test_pass_that_never_succeeded_is_a_problem(session, settings, now):
    _healthy_base(session, settings, now)
    _add(session, _run("deliver-webhooks", "", "skipped", now))
    result = _status(session, settings, now)
    assert result.problems == [
        "pass deliver-webhooks: has never succeeded; last run skipped"
    ]


def test_recent_success_is_not_stale(session, settings, now):
    _healthy_base(session, settings, now)
    _add(session, _run("confirm", "local", "ok", now - timedelta(minutes=4)))
    assert _status(session, settings, now).healthy


def test_chain_in_use_never_scanned_is_a_problem(session, settings, now):
    _payment(session, settings, now)
    result = _status(session, settings, now)
    assert result.problems == [
        "chain local: in use but `ctrip scan --chain local` has never run"
    ]


def test_stuck_sweep_is_a_problem(session, settings, now):
    _healthy_base(session, settings, now)
    old = now - timedelta(minutes=20)
    first = _sweep("native:a", "replaced", old, nonce=0)
    _add(session, first)
    # Replaced again and again: the purpose is stuck since its first attempt.
    _add(session, _sweep("native:a", "pending", now, nonce=0, replaces=first.id))
    _add(session, _sweep("native:b", "confirmed", old, nonce=1))
    _add(session, _sweep("native:c", "pending", now - timedelta(minutes=1), nonce=2))
    _add(session, _sweep("token:d", "failed", old, nonce=3))
    result = _status(session, settings, now)
    sweeps = result.chains["local"].sweeps
    assert (sweeps.in_flight, sweeps.stuck) == (2, 1)
    assert sweeps.by_state == {"replaced": 1, "pending": 2, "confirmed": 1, "failed": 1}
    assert result.warnings == [
        "chain local: 1 sweep transaction(s) failed on chain; "
        "see `ctrip sweep --chain local --json`"
    ]
    assert sweeps.oldest_stuck_since == old
    (problem,) = result.problems
    assert problem.startswith("chain local: 1 sweep(s) stuck")


def test_failed_webhook_is_a_problem(session, settings, now):
    _healthy_base(session, settings, now)
    _add(session, _event("failed", now - timedelta(hours=1), attempts=8))
    result = _status(session, settings, now)
    assert result.outbox.failed == 1
    (problem,) = result.problems
    assert "1 event(s) failed" in problem
    assert "retry --all-failed" in problem


def test_webhook_waiting_too_long_is_a_problem(session, settings, now):
    _healthy_base(session, settings, now)
    _add(
        session,
        _event("pending", now - timedelta(minutes=20), attempts=2),
        _event("pending", now - timedelta(minutes=1)),
        _event("pending", now + timedelta(minutes=5), attempts=1),
        _event("delivered", now - timedelta(hours=2), attempts=1),
    )
    result = _status(session, settings, now)
    outbox = result.outbox
    assert (outbox.due, outbox.retrying, outbox.failed) == (2, 2, 0)
    assert outbox.oldest_due_age_s == pytest.approx(1200)
    (problem,) = result.problems
    assert "oldest due event has waited 20m00s" in problem
    assert result.webhooks == {"pending": 3, "delivered": 1}
    assert result.warnings == [
        "webhooks: 2 event(s) are being retried after failed attempts; "
        "see `ctrip webhooks list --status pending`"
    ]


def test_all_endpoints_down_is_a_problem_some_down_a_warning(session, settings, now):
    _healthy_base(session, settings, now)
    degraded = _status(session, settings, now, {"local": [_down(), _up(1_000)]})
    assert degraded.healthy
    assert degraded.chains["local"].rpc == "degraded"
    assert degraded.warnings == [
        "chain local: RPC #2 node.example is down (ConnectError)"
    ]
    down = _status(session, settings, now, {"local": [_down("endpoint #1")]})
    assert down.chains["local"].head is None
    assert down.problems == [
        "chain local: no RPC endpoint answers (endpoint #1: ConnectError)"
    ]


def test_unused_chains_are_not_probed_or_judged(session, settings, now):
    result = _status(session, settings, now, {})
    assert result.healthy
    assert status_job.chains_in_use(session, list(settings.chains)) == []
    assert result.chains["ethereum"].rpc == "not checked"


def test_oldest_pending_and_detected(session, settings, now):
    _healthy_base(session, settings, now)
    _payment(session, settings, now - timedelta(minutes=3), asset="USDC")
    result = _status(session, settings, now)
    assert result.payments_oldest == {
        "pending": now - timedelta(minutes=3),
        "detected": None,
    }
    assert result.chains["local"].sweeps.awaiting == 0


def _with_payer(session, settings, now, payer):
    return status_job.run(
        session,
        {"local": [_up(1_000)]},
        chains=settings.chains,
        now=now,
        settings=STATUS,
        gas_payers={"local": payer},
    )


def test_gas_payer_short_of_what_token_sweeps_need_is_a_warning(session, settings, now):
    _healthy_base(session, settings, now)
    token = _payment(session, settings, now, asset="USDC")
    with session.begin():
        session.execute(
            update(Payment).where(Payment.id == token["id"]).values(status="confirmed")
        )
    payer = status_job.GasPayer(ADDR, balance_wei=10**6, gas_price_wei=10**9)
    result = _with_payer(session, settings, now, payer)
    local = result.chains["local"]
    assert local.sweeps.awaiting_tokens == 1
    assert local.gas_payer.needed_wei == status_job.TOKEN_SWEEP_GAS * 10**9
    assert result.healthy
    (warning,) = result.warnings
    assert "gas payer holds less than" in warning


def test_gas_payer_need_counts_the_l1_fee_of_each_token_sweep(session, settings, now):
    _healthy_base(session, settings, now)
    for _ in range(2):
        token = _payment(session, settings, now, asset="USDC")
        with session.begin():
            session.execute(
                update(Payment)
                .where(Payment.id == token["id"])
                .values(status="confirmed")
            )
    payer = status_job.GasPayer(
        ADDR, balance_wei=10**6, gas_price_wei=10**9, l1_fee_wei=7 * 10**11
    )
    result = _with_payer(session, settings, now, payer)
    need = result.chains["local"].gas_payer.needed_wei
    assert need == 2 * (status_job.TOKEN_SWEEP_GAS * 10**9 + 7 * 10**11)


def test_confirmed_payments_not_swept_for_long_are_a_warning(session, settings, now):
    _healthy_base(session, settings, now)
    paid = _payment(session, settings, now - timedelta(hours=1))
    with session.begin():
        session.execute(
            update(Payment)
            .where(Payment.id == paid["id"])
            .values(status="confirmed", confirmed_at=now - timedelta(minutes=16))
        )
    result = _status(session, settings, now)
    assert result.healthy
    assert result.chains["local"].sweeps.awaiting_since == now - timedelta(minutes=16)
    (warning,) = result.warnings
    assert warning.startswith(
        "chain local: 1 confirmed payment(s) not swept, the oldest"
    )


def test_money_no_sweep_takes_is_counted_by_reason(session, settings, now):
    _healthy_base(session, settings, now)
    held = _payment(session, settings, now)
    dust = _payment(session, settings, now)
    swept = _payment(session, settings, now)
    values = {
        held["id"]: {"status": "expired", "amount_received": 3 * 10**17},
        dust["id"]: {
            "status": "settled",
            "amount_received": 10**18 + 1,
            "amount_swept": 10**18,
        },
        swept["id"]: {
            "status": "settled",
            "amount_received": 10**18,
            "amount_swept": 10**18,
        },
    }
    with session.begin():
        for pid, sets in values.items():
            session.execute(update(Payment).where(Payment.id == pid).values(**sets))

    sweeps = _status(session, settings, now).chains["local"].sweeps

    assert (sweeps.held_for_refund, sweeps.unswept_settled) == (1, 1)


def test_sweeps_a_node_refuses_for_funds_count_as_stuck(session, settings, now):
    """A signed or held sweep no node has accepted (refused for insufficient funds)
    is stuck like an unmined one, counted from when it was signed."""
    _healthy_base(session, settings, now)
    old = now - timedelta(minutes=20)
    _add(session, _sweep("native:a", "signed", old, nonce=0))
    _add(session, _sweep("token:b", "held", old, nonce=1))
    _add(session, _sweep("token:c", "held", now, nonce=2))
    sweeps = _status(session, settings, now).chains["local"].sweeps
    assert (sweeps.in_flight, sweeps.stuck) == (3, 2)
    assert sweeps.oldest_stuck_since == old
