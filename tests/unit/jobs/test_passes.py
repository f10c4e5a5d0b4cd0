"""The pass registry names every locked pass once, with its result and skipped result."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from ctrip_cli.db.locks import JobLock
from ctrip_cli.jobs import passes


def test_every_lock_is_a_registered_pass_and_back():
    assert {p.lock for p in passes.REGISTRY} == set(JobLock)
    assert len({p.name for p in passes.REGISTRY}) == len(passes.REGISTRY)


@pytest.mark.parametrize("p", passes.REGISTRY, ids=lambda p: p.name)
def test_skipped_result_is_the_pass_result_type(p):
    result = p.skipped("bsc", "lock held")
    assert type(result) is p.result_type()
    assert dataclasses.is_dataclass(result)
    assert (result.job, result.skipped) == (p.name, "lock held")
    assert result.chain == ("bsc" if p.per_chain else None)


def test_scopes_follow_per_chain():
    assert passes.scopes(passes.SCAN, ["a", "b"]) == ["a", "b"]
    assert passes.scopes(passes.DELIVER_WEBHOOKS, ["a", "b"]) == [""]
    assert passes.by_name("sweep") is passes.SWEEP
    with pytest.raises(KeyError):
        passes.by_name("nope")


def test_the_registry_loads_no_job_module():
    code = (
        "import sys, ctrip_cli.jobs.passes, ctrip_cli.jobs.status_health; "
        "print(sorted(m for m in sys.modules if m.startswith('ctrip_cli.jobs.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == (
        "['ctrip_cli.jobs.passes', 'ctrip_cli.jobs.status_health', "
        "'ctrip_cli.jobs.status_model']"
    )
