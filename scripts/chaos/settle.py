"""Let the system settle: run every pass with healthy RPC until nothing is left to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scripts.chaos.world import World

OPEN_WORK = """
SELECT
  (SELECT count(*) FROM payments WHERE status IN ('detected', 'confirmed')),
  (SELECT count(*) FROM sweep_transactions
     WHERE state NOT IN ('confirmed', 'failed', 'replaced')),
  (SELECT count(*) FROM webhook_events WHERE status <> 'delivered')
"""


def settle(world: World, *, max_rounds: int = 6) -> list[str]:
    """Run scan, confirm, sweep and deliver-webhooks until quiet; returns failures of
    passes that ran with healthy RPC (each one is a violation)."""
    world.proxy.clear()
    world.proxy2.clear()
    world.receiver.fail_rate = 0.0
    problems: list[str] = []
    for _ in range(max_rounds):
        for step in (
            "mine",
            "scan",
            "confirm",
            "sweep",
            "mine",
            "sweep",
            "mine",
            "sweep",
            "deliver-webhooks",
        ):
            if step == "mine":
                world.mine(world.confirmations + 1)
                continue
            if step == "deliver-webhooks":
                world.fast_forward()
                args = ["deliver-webhooks", "--json", "--time-budget", "20s"]
            else:
                args = [step, "--chain", "local", "--json"]
            run = world.cli_inproc(*args)
            if run.rc != 0:
                problems.append(
                    f"settling: `ctrip {' '.join(args)}` exited {run.rc}: "
                    f"{run.err.strip()[-300:]}"
                )
        (row,) = world.query(OPEN_WORK)
        if not any(row):
            break
    return problems
