"""`ctrip webhooks list | retry`: inspect and redeliver outbox events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ctrip_cli.cli import webhooks_app

if TYPE_CHECKING:
    from rich.table import Table

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


@webhooks_app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(help="Only this status: pending, delivered, failed, skipped."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="At most this many.")
    ] = 100,
    json_: JsonOpt = False,
) -> None:
    """List webhook events, newest first.

    Example: [bold]ctrip webhooks list --status failed[/]
    """
    from ctrip_cli.jobs import webhooks_admin

    rt = ctx.obj
    with rt.errors(), rt.open_session() as session:
        rows = webhooks_admin.list_events(session, status=status, limit=limit)
    rt.show(lambda: _table(rows), rows, as_json=json_)


@webhooks_app.command("retry")
def retry(
    ctx: typer.Context,
    event_id: Annotated[str | None, typer.Argument(help="The event (msg_...).")] = None,
    all_failed: Annotated[
        bool, typer.Option("--all-failed", help="Every failed event.")
    ] = False,
    all_skipped: Annotated[
        bool,
        typer.Option("--all-skipped", help="Every event skipped for lack of a URL."),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Redeliver: make events pending and due now, with a fresh retry ladder.

    The next [bold]ctrip deliver-webhooks[/] sends them with the same webhook-id.
    Example: [bold]ctrip webhooks retry --all-failed[/]
    """
    from ctrip_cli.jobs import webhooks_admin

    rt = ctx.obj
    with rt.errors(), rt.open_session() as session, session.begin():
        result = webhooks_admin.retry(
            session,
            event_id=event_id,
            all_failed=all_failed,
            all_skipped=all_skipped,
            now=rt.now(),
        )
    rt.show(f"requeued {result.requeued} event(s)", result, as_json=json_)


def _table(rows: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table("id", "type", "status", "attempts", "last", "next attempt", "url")
    for r in rows:
        last = r["last_error"] or (
            str(r["last_status_code"]) if r["last_status_code"] else "-"
        )
        url = r["url"] or "(CTRIP_WEBHOOK_URL)"
        table.add_row(
            r["id"],
            r["type"],
            r["status"],
            str(r["attempts"]),
            last,
            r["next_attempt_at"] or "-",
            url,
        )
    return table
