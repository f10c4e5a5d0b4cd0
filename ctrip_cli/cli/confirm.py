"""`ctrip confirm --chain C`: promote deep-enough payments, expire overdue ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ctrip_cli.cli import app
from ctrip_cli.cli.runtime import Runtime

if TYPE_CHECKING:
    from rich.table import Table

    from ctrip_cli.jobs import confirm as confirm_job


@app.command()
def confirm(
    ctx: typer.Context,
    chain: Annotated[str, typer.Option(help="Chain name from chains.yaml.")],
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object.")
    ] = False,
) -> None:
    """Promote detected payments whose transfers are deep enough and still canonical;
    expire overdue pending ones.

    Example: [bold]ctrip confirm --chain bsc --json[/]
    """
    # Here, so `ctrip --help` stays fast.
    from ctrip_cli.jobs import confirm as confirm_job
    from ctrip_cli.jobs import passes

    rt: Runtime = ctx.obj
    with rt.errors():
        cfg = rt.settings.chain(chain)
        with rt.open_chain(chain) as client:
            result = rt.run_job(
                passes.CONFIRM,
                chain,
                lambda session: confirm_job.run(
                    session,
                    client,
                    cfg=cfg,
                    now=rt.now(),
                    tolerance_bps=rt.settings.scan.underpayment_tolerance_bps,
                ),
            )
    rt.show(lambda: _view(result), result, as_json=json_)


def _view(r: confirm_job.ConfirmResult) -> Table | str:
    from rich.table import Table

    if r.skipped:
        return f"confirm {r.chain}: skipped ({r.skipped})"
    table = Table("chain", "head", "confirmed", "expired", "waiting", "not canonical")
    head = f"{r.head:,}" if r.head is not None else "-"
    table.add_row(
        r.chain,
        head,
        str(r.confirmed),
        str(r.expired),
        str(r.waiting),
        str(r.not_canonical),
    )
    return table
