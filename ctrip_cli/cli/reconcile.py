"""`ctrip reconcile --chain C`: compare deposit balances with the ledger at one block.

Fault injection for the crash tests: `CTRIP_TEST_CRASH_AT=after_read|after_commit`
SIGKILLs the pass there (as for `sweep`); leave it unset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ctrip_cli.cli import app
from ctrip_cli.cli.runtime import Runtime
from ctrip_cli.cli.sweep import _crash_hook

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table

    from ctrip_cli.jobs import reconcile as reconcile_job


@app.command()
def reconcile(
    ctx: typer.Context,
    chain: Annotated[str, typer.Option(help="Chain name from chains.yaml.")],
    at_block: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Compare at this block (at least `confirmations` deep, already "
            "scanned); default: the head less confirmations.",
        ),
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object.")
    ] = False,
) -> None:
    """Read the balances of every deposit address the ledger can explain at one deep
    block; credit money nobody recorded (coin forwarded by contracts, a token without
    Transfer logs) to its payment, and record every difference (shortfalls: funds
    moved by something ctrip did not sign).

    Example: [bold]ctrip reconcile --chain bsc --json[/]
    """
    # Here, so `ctrip --help` stays fast.
    from ctrip_cli.jobs import passes
    from ctrip_cli.jobs import reconcile as reconcile_job

    rt: Runtime = ctx.obj
    failed = {"job": "reconcile", "chain": chain} if json_ else None
    with rt.errors(failed_json=failed):
        cfg = rt.settings.chain(chain)
        with rt.open_chain(chain) as client:
            with rt.open_session() as session:
                block = reconcile_job.pick_block(
                    session, client, cfg=cfg, at_block=at_block
                )
            result = rt.run_job(
                passes.RECONCILE,
                chain,
                lambda session: reconcile_job.run(
                    session,
                    client,
                    cfg=cfg,
                    now=rt.now(),
                    settings=rt.settings.scan,
                    block=block,
                    hook=_crash_hook(),
                ),
            )
    rt.show(lambda: _view(result), result, as_json=json_)


def _view(r: reconcile_job.ReconcileResult) -> Table | Group | str:
    from rich.console import Group
    from rich.table import Table

    if r.skipped:
        return f"reconcile {r.chain}: skipped ({r.skipped})"
    table = Table(
        "chain", "block", "balances", "credited", "shortfalls", "open", "resolved"
    )
    table.add_row(
        r.chain,
        "-" if r.block is None else f"#{r.block:,}",
        f"{r.balances_read:,} ({r.method or '-'})",
        str(r.inflows_credited),
        str(r.shortfalls),
        str(r.open_differences),
        str(r.resolved),
    )
    if not r.differences:
        return table
    found = Table(
        "address", "asset", "kind", "expected", "actual", "resolution", title="found"
    )
    for d in r.differences:
        found.add_row(
            d.address,
            d.asset,
            d.kind,
            d.expected_base_units,
            d.actual_base_units,
            d.resolution + (f" ({d.payment_id})" if d.payment_id else ""),
        )
    return Group(table, found)
