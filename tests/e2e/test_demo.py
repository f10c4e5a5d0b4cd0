"""The README's demo, run as a newcomer would: every payment settled, every webhook
verified, `status --check` healthy, and no secret on the screen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.evm]


def test_demo_runs_the_whole_flow(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTRIP_")}
    if "CTRIP_ANVIL" in os.environ:
        env["CTRIP_ANVIL"] = os.environ["CTRIP_ANVIL"]
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "demo.py"),
            "--dir",
            str(tmp_path / "d"),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "payments: ['settled', 'settled', 'settled']" in out
    assert "webhooks: 9 verified" in out
    assert "0 rejected" in out
    assert "status --check: healthy" in out
    assert "treasury received 25.000000 USDC" in out
    assert "treasury received 10.750000 DAI" in out
    assert "skipped: `ctrip" not in out
    assert "whsec_" not in out
    assert "Traceback" not in out
    assert (tmp_path / "d" / "ctrip.db").is_file()
    assert "ctrip_pass_recent_runs" in (tmp_path / "d" / "ctrip.prom").read_text()
