"""`ctrip status`: chains, payments, outbox and last runs at a glance."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table

from ctrip_cli.cli import app
from ctrip_cli.jobs import status as status_job


@app.command()
def status(
    ctx: typer.Context,
    chain: Annotated[str | None, typer.Option(help="Only this chain.")] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 3 and list the reasons when unhealthy."),
    ] = False,
) -> None:
    """Show chain lag, payments by status, the webhook outbox and the last runs.

    Example: [bold]ctrip status --check[/] (for monitors: exit 3 when unhealthy)
    """
    rt = ctx.obj
    with rt.errors(), ExitStack() as stack:
        names = [chain] if chain else list(rt.settings.chains)
        chains = {n: rt.settings.chain(n) for n in names}
        session = stack.enter_context(rt.open_session())
        probed = names if chain else status_job.chains_in_use(session, names)
        clients = {n: stack.enter_context(rt.open_chain(n)) for n in probed}
        result = status_job.run(session, clients, chains=chains, now=rt.now())
    rt.show(lambda: _view(result), result, as_json=json_)
    if check and not result.healthy:
        for problem in result.problems:
            rt.err.print(f"unhealthy: {problem}", markup=False)
        raise typer.Exit(3)


def _view(result: status_job.StatusResult) -> Group:
    chains = Table("chain", "head", "cursor", "lag", "rpc", title="chains")
    for name, c in result.chains.items():
        chains.add_row(name, _n(c.head), _n(c.cursor), _n(c.lag_blocks), c.rpc)
    counts = Table("payments", "n", "webhooks", "n", title="queues")
    pay, hooks = sorted(result.payments.items()), sorted(result.webhooks.items())
    for i in range(max(len(pay), len(hooks))):
        p = pay[i] if i < len(pay) else ("", "")
        h = hooks[i] if i < len(hooks) else ("", "")
        counts.add_row(p[0], str(p[1]), h[0], str(h[1]))
    runs = Table("pass", "last success", "last failure", title="passes")
    for key in sorted({*result.last_success, *result.last_failure}):
        ok, bad = result.last_success.get(key), result.last_failure.get(key)
        runs.add_row(
            key,
            ok.at.isoformat() if ok else "-",
            f"{bad.at.isoformat()} {bad.detail}" if bad else "-",
        )
    verdict = (
        "[green]healthy[/]"
        if result.healthy
        else "[red]unhealthy[/]: " + "; ".join(result.problems)
    )
    return Group(chains, counts, runs, verdict)


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
