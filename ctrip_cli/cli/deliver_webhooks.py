"""`ctrip deliver-webhooks`: one delivery pass over the webhook outbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ctrip_cli.cli import app

if TYPE_CHECKING:
    from rich.table import Table

    from ctrip_cli.jobs import deliver_webhooks as job

# A pass is started again by its scheduler; a budget past a day is a typo.
MAX_TIME_BUDGET_S = 86_400


@app.command("deliver-webhooks")
def deliver_webhooks(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="Claim at most this many events.")
    ] = 1_000,
    time_budget: Annotated[
        str, typer.Option(help="Stop claiming and end requests by then: 50s, 2m.")
    ] = "50s",
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object.")
    ] = False,
) -> None:
    """Send due webhook events, signed, record each attempt and schedule retries.

    Keeps claiming newly due events (short retries) while the budget lasts.
    Example: [bold]ctrip deliver-webhooks --time-budget 50s --json[/]
    """
    # Imported here so `ctrip --help` does not load httpx and SQLAlchemy.
    from ctrip_cli.jobs import deliver_webhooks as job
    from ctrip_cli.jobs import passes
    from ctrip_cli.money import parse_duration_s

    rt = ctx.obj
    with rt.errors():
        budget_s = parse_duration_s(
            time_budget, what="--time-budget", max_s=MAX_TIME_BUDGET_S
        )
        settings = rt.settings
        dev_chains = [name for name, chain in settings.chains.items() if chain.is_dev]
        result = rt.run_job(
            passes.DELIVER_WEBHOOKS,
            "",
            lambda session: job.run(
                session,
                now=rt.now(),
                settings=settings.webhooks,
                dev_chains=dev_chains,
                limit=limit,
                time_budget_s=budget_s,
            ),
        )
    rt.show(lambda: _view(result), result, as_json=json_)


def _view(result: job.DeliverWebhooksResult) -> Table:
    from rich.table import Table

    table = Table("deliver-webhooks", "n", box=None)
    if result.skipped:
        table.add_row("skipped", result.skipped)
        return table
    for key in ("claimed", "delivered", "retrying", "failed", "no_url", "released"):
        table.add_row(key.replace("_", " "), str(getattr(result, key)))
    table.add_row("elapsed", f"{result.elapsed_s:.1f}s")
    return table
