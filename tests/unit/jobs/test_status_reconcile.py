"""`status` and metrics for reconcile: the last reconcile and its age, open
differences by kind (an open shortfall is a problem, unattributed money a warning),
and the pass judged stale by its own 10-minute interval."""

from __future__ import annotations

from datetime import timedelta

from ctrip_cli import metrics
from ctrip_cli.db.models import ReconcileCursor, ReconcileDifference
from tests.unit.jobs.test_status import (
    ADDR,
    _add,
    _healthy_base,
    _run,
    _status,
)


def _difference(now, kind: str, amount: int, asset: str = "ETH") -> ReconcileDifference:
    return ReconcileDifference(
        chain="local",
        address=ADDR,
        asset=asset,
        token_address=None,
        block_number=980,
        block_hash="0x" + "ab" * 32,
        expected=1_000,
        actual=1_000 - amount if kind == "shortfall" else 1_000 + amount,
        amount=amount,
        kind=kind,
        resolution="open",
        note="test",
        created_at=now,
        last_seen_at=now,
        last_seen_block=980,
    )


def test_an_open_shortfall_is_a_problem_and_a_metric(session, settings, now):
    _healthy_base(session, settings, now)
    _add(
        session,
        ReconcileCursor(chain="local", block_number=980, block_hash="0x00", at=now),
        _run("reconcile", "local", "ok", now),
        _difference(now, "shortfall", 400),
        _difference(now, "inflow", 7, asset="USDC"),
    )

    result = _status(session, settings, now + timedelta(seconds=30))
    text = metrics.exposition(result)

    rec = result.chains["local"].reconcile
    assert rec is not None
    assert (rec.block, rec.age_s, rec.open) == (
        980,
        30.0,
        {"shortfall": 1, "inflow": 1},
    )
    assert rec.open_base_units == {"ETH:shortfall": 400, "USDC:inflow": 7}
    assert [d.kind for d in rec.differences] == ["shortfall", "inflow"]
    assert not result.healthy
    assert any("400 base units of ETH" in p for p in result.problems)
    assert any("money no payment asks for" in w for w in result.warnings)
    assert (
        'ctrip_reconcile_difference_base_units{asset="ETH",chain="local",kind="shortfall"} 400.0'
        in text
    )
    assert 'ctrip_reconcile_age_seconds{chain="local"} 30.0' in text
    assert 'ctrip_reconcile_open_differences{chain="local",kind="inflow"} 1.0' in text


def test_reconcile_is_stale_only_after_five_of_its_own_intervals(
    session, settings, now
):
    _healthy_base(session, settings, now)
    _add(session, _run("reconcile", "local", "ok", now - timedelta(minutes=20)))
    fresh = _status(session, settings, now)
    late = _status(session, settings, now + timedelta(minutes=40))

    assert not [p for p in fresh.problems if "reconcile" in p]
    assert [p for p in late.problems if "pass reconcile:local" in p]


def test_the_dashboard_shows_the_last_reconcile(session, settings, now):
    from rich.console import Console

    from ctrip_cli.cli import status as status_cli

    _healthy_base(session, settings, now)
    _add(
        session,
        ReconcileCursor(chain="local", block_number=980, block_hash="0x00", at=now),
        _difference(now, "shortfall", 400),
    )
    console = Console(record=True, width=160)
    console.print(
        status_cli.view(_status(session, settings, now + timedelta(minutes=3)))
    )
    text = console.export_text()

    assert "last #980 3m00s ago · open differences: shortfall 1" in text
