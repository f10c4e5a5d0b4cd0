"""The chaos campaigns at CI size: real CLI subprocesses, a real anvil behind the
fault-injecting proxy, a real PostgreSQL. Every campaign must inject its faults and end
with zero invariant violations. Full size: `python -m scripts.chaos --size full`."""

from __future__ import annotations

import os

import pytest

from scripts.chaos.campaigns import CAMPAIGNS, run_campaign

pytestmark = [pytest.mark.chaos, pytest.mark.evm, pytest.mark.postgres]
SIZE = os.environ.get("CTRIP_CHAOS_SIZE", "small")


@pytest.mark.parametrize("name", list(CAMPAIGNS))
def test_campaign_holds_its_invariants(name, tmp_path):
    result = run_campaign(
        name,
        SIZE,
        tmp_path,
        seed=1000 + list(CAMPAIGNS).index(name),
        database_kind="postgresql",
    )
    assert result.trials > 0
    assert result.faults > 0, f"{name}: no fault was injected ({dict(result.notes)})"
    assert result.violations == []
