"""`ctrip db upgrade`."""

from __future__ import annotations

import typer

from ctrip_cli.cli import db_app


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Create or migrate the schema to the latest version (safe to rerun).

    Run it once per release, before the passes use the new version.
    Example: [bold]ctrip db upgrade[/] (the database is CTRIP_DATABASE_URL)
    """
    from ctrip_cli.db import engine as db_engine

    rt = ctx.obj
    with rt.errors():
        db_engine.upgrade(rt.engine)
    rt.err.print("database schema is up to date")
