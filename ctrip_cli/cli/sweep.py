"""`ctrip sweep --chain C [--dry-run]`: move confirmed funds to the chain's treasury.

Fault injection for the crash tests: `CTRIP_TEST_CRASH_AT=after_sign|after_broadcast`
SIGKILLs this process at that step (the first time it is reached). It exists only to
prove that a killed pass loses nothing and never signs twice; leave it unset.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from ctrip_cli.cli import app

if TYPE_CHECKING:
    from rich.console import Group, RenderableType
    from sqlalchemy.orm import Session

    from ctrip_cli.jobs.sweep import SweepResult


@app.command()
def sweep(
    ctx: typer.Context,
    chain: Annotated[str, typer.Option(help="Chain name from chains.yaml.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; sign and write nothing.")
    ] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object.")
    ] = False,
) -> None:
    """Sweep confirmed payments' funds from their deposit addresses to the treasury.

    Example: [bold]ctrip sweep --chain bsc --dry-run[/]
    """
    from ctrip_cli.chain.signer import KeyRing
    from ctrip_cli.jobs import passes
    from ctrip_cli.jobs import sweep as sweep_job

    rt = ctx.obj
    with rt.errors():
        cfg = rt.settings.chain(chain)
        sweep_job.require_treasury(cfg)
        keys = KeyRing.for_chain(rt.settings.mnemonic, cfg)
        with rt.open_chain(chain) as client:

            def body(session: Session) -> SweepResult:
                return sweep_job.run(
                    session,
                    client,
                    cfg=cfg,
                    keys=keys,
                    now=rt.now(),
                    settings=rt.settings.sweep,
                    dry_run=dry_run,
                    hook=_crash_hook(),
                    tolerance_bps=rt.settings.scan.underpayment_tolerance_bps,
                )

            if dry_run:  # read-only: no lock, no job_runs row, nothing committed
                with rt.open_session() as session:
                    result = body(session)
            else:
                result = rt.run_job(passes.SWEEP, chain, body)
    rt.show(lambda: _view(result), result, as_json=json_)


def _crash_hook() -> Callable[[str], None] | None:
    at = os.environ.get("CTRIP_TEST_CRASH_AT")
    if not at:
        return None

    def hook(step: str) -> None:
        if step == at:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def _view(r: SweepResult) -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    title = f"sweep {r.chain}" + (
        " (dry run: nothing signed or written)" if r.dry_run else ""
    )
    if r.skipped:
        return Group(f"{title}: skipped ({r.skipped})")
    summary = (
        f"planned {r.planned}, signed {r.signed}, broadcast {r.broadcast}, "
        f"confirmed {r.confirmed}, settled {r.settled}, replaced {r.replaced}, "
        f"rebroadcast {r.rebroadcast}, uneconomic {r.skipped_uneconomic}, "
        f"failed {r.failed}, in flight {r.in_flight}"
    )
    parts: list[RenderableType] = []
    if r.plan:
        table = Table("action", "asset", "from", "to", "amount", "fee", title=title)
        for item in r.plan:
            table.add_row(
                item.action,
                item.asset,
                item.from_address,
                item.to_address,
                item.amount,
                item.fee,
            )
        parts.append(table)
    else:
        parts.append(f"{title}: nothing new to sweep")
    parts.append(summary)
    parts.extend(Text(e, style="yellow") for e in r.errors)
    return Group(*parts)
