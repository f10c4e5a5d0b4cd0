"""The `ctrip` command line: parse, open, call, render, exit.

Each command lives in its own module and registers itself on `app` (or a sub-app).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ctrip_cli.cli.logs import setup_logging
from ctrip_cli.cli.runtime import Runtime

app = typer.Typer(
    name="ctrip",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    help="""Self-hosted crypto payment gateway: one idempotent pass per command.

New here? [bold]scripts/quickstart.sh[/] runs the whole flow on a local dev chain.

Set up the database, then create payments (or call the Python function):

  [bold]ctrip db upgrade[/]
  [bold]ctrip payments create --chain bsc --asset USDT --amount 12.5 --json[/]

Run the passes from cron or Kubernetes CronJobs against one shared database:

  [bold]ctrip scan --chain bsc[/]      new blocks: record deposits, rewind reorgs
  [bold]ctrip confirm --chain bsc[/]   confirm deep-enough payments, expire overdue
  [bold]ctrip sweep --chain bsc[/]     move confirmed funds to the treasury
  [bold]ctrip deliver-webhooks[/]      send signed webhooks, with retries
  [bold]ctrip status --check[/]        health at a glance; exit 3 when unhealthy

Exit codes: 0 the pass ran (or was skipped: lock held), 1 it could not do
its work, 2 bad usage or configuration, 3 `status --check` found a problem.""",
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema management.")
payments_app = typer.Typer(no_args_is_help=True, help="Create and inspect payments.")
webhooks_app = typer.Typer(
    no_args_is_help=True, help="Inspect and redeliver webhook events."
)
app.add_typer(db_app, name="db")
app.add_typer(payments_app, name="payments")
app.add_typer(webhooks_app, name="webhooks")


@app.callback()
def root(
    ctx: typer.Context,
    chains: Annotated[
        Path | None,
        typer.Option(
            "--chains",
            envvar="CTRIP_CHAINS_FILE",
            help="chains.yaml to use (default ./chains.yaml, else the built-in one).",
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            envvar="CTRIP_LOG_FORMAT",
            help="stderr log format: text or json (JSON lines, for Kubernetes).",
        ),
    ] = "text",
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug detail on stderr.")
    ] = False,
) -> None:
    """Set up the runtime every command shares."""
    from dotenv import load_dotenv

    load_dotenv(Path.cwd() / ".env", override=False)
    if log_format not in ("text", "json"):
        raise typer.BadParameter("use text or json", param_hint="--log-format")
    err = Console(stderr=True)
    setup_logging(
        err, log_format=log_format, level=logging.DEBUG if verbose else logging.INFO
    )
    ctx.obj = Runtime(
        chains_file=chains, out=Console(), err=err, log_json=log_format == "json"
    )


def main() -> None:
    app()


def _register() -> None:
    # Importing a command module registers its commands on the apps above.
    import ctrip_cli.cli.confirm
    import ctrip_cli.cli.db
    import ctrip_cli.cli.deliver_webhooks
    import ctrip_cli.cli.payments
    import ctrip_cli.cli.reconcile
    import ctrip_cli.cli.scan
    import ctrip_cli.cli.status
    import ctrip_cli.cli.sweep
    import ctrip_cli.cli.webhooks  # noqa: F401


_register()
