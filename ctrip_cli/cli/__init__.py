"""The `ctrip` command line: parse, open, call, render, exit.

Each command lives in its own module, `cli/<command>.py`, which registers it with
`@app.command()` (or on a sub-app: `@payments_app.command("create")`); COMMANDS below
lists those modules. Command modules import what their work needs (SQLAlchemy,
pydantic, the chain, Rich tables) inside the command function, so `ctrip --help` and
every other command stay fast to start.
"""

from __future__ import annotations

import gc
import importlib
import logging
from pathlib import Path
from typing import Annotated

import typer

from ctrip_cli.cli.help import App
from ctrip_cli.cli.logs import setup_logging
from ctrip_cli.cli.runtime import Runtime

app = App(
    name="ctrip",
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
db_app = App(help="Database schema management.")
payments_app = App(help="Create and inspect payments.")
webhooks_app = App(help="Inspect and redeliver webhook events.")
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
        str | None,
        typer.Option(
            "--log-format",
            envvar="CTRIP_LOG_FORMAT",
            help="stderr log format: text (the default) or json (JSON lines, for "
            "Kubernetes).",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug detail on stderr.")
    ] = False,
) -> None:
    """Set up the runtime every command shares."""
    from dotenv import load_dotenv

    load_dotenv(Path.cwd() / ".env", override=False)
    # The default is None, not "text": Typer checks every value it is handed (with
    # pydantic), which a default would make `ctrip scan --help` import.
    log_format = "text" if log_format is None else log_format
    if log_format not in ("text", "json"):
        raise typer.BadParameter("use text or json", param_hint="--log-format")
    rt = Runtime(chains_file=chains, log_json=log_format == "json")
    setup_logging(
        lambda: rt.err,
        log_format=log_format,
        level=logging.DEBUG if verbose else logging.INFO,
    )
    ctx.obj = rt


def main() -> None:
    try:
        app()
    finally:
        # The process ends here. Without this, the interpreter's shutdown runs full
        # garbage collections over every object the imports made (SQLAlchemy, pydantic:
        # ~80,000), about 150 ms of CPU per pass; atexit handlers and finalizers still
        # run, and the memory goes back with the process.
        gc.freeze()


# The command modules, each `ctrip_cli/cli/<name>.py`; importing one registers its
# commands. A new command is a new module and one line here.
COMMANDS = (
    "confirm",
    "db",
    "deliver_webhooks",
    "payments",
    "reconcile",
    "scan",
    "status",
    "sweep",
    "webhooks",
)
for _name in COMMANDS:
    importlib.import_module(f"ctrip_cli.cli.{_name}")
