"""`ctrip payments create | list | show`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ctrip_cli.cli import payments_app

if TYPE_CHECKING:
    from rich.table import Table

    from ctrip_cli.payments import PaymentDetail

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout.")
]


@payments_app.command("create")
def create(
    ctx: typer.Context,
    chain: Annotated[str, typer.Option(help="Chain name from chains.yaml.")],
    asset: Annotated[
        str, typer.Option(help="Token symbol or the chain's native symbol.")
    ],
    amount: Annotated[str, typer.Option(help="Decimal amount, e.g. 12.5.")],
    expires_in: Annotated[
        str | None,
        typer.Option(help="Deadline from now: 90s, 30m, 2h, 1d. [default: 30m]"),
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option(help="Webhook endpoint (default CTRIP_WEBHOOK_URL).")
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="Your order id or note.")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Create a payment with its own deposit address.

    Example: [bold]ctrip payments create --chain bsc --asset USDT --amount 12.5 --json[/]
    """
    from ctrip_cli import payments
    from ctrip_cli.money import parse_duration_s

    rt = ctx.obj
    with rt.errors():
        expires_s = (
            None
            if expires_in is None
            else parse_duration_s(
                expires_in, what="--expires-in", max_s=payments.MAX_EXPIRES_IN_S
            )
        )
        with rt.open_session() as session, session.begin():
            result = payments.create_payment(
                session,
                rt.settings,
                chain=chain,
                asset=asset,
                amount=amount,
                now=rt.now(),
                expires_in_s=expires_s,
                webhook_url=webhook_url,
                reference=reference,
            )
    rt.show(lambda: _detail_table(result), result, as_json=json_)


@payments_app.command("list")
def list_(
    ctx: typer.Context,
    chain: Annotated[str | None, typer.Option(help="Only this chain.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="At most this many.")
    ] = 100,
    json_: JsonOpt = False,
) -> None:
    """List payments, newest first.

    Example: [bold]ctrip payments list --chain bsc --status detected[/]
    """
    from ctrip_cli import payments

    rt = ctx.obj
    with rt.errors():
        if chain is not None:
            rt.settings.chain(chain)
        with rt.open_session() as session:
            rows = payments.list_payments(
                session, chain=chain, status=status, limit=limit
            )
    rt.show(lambda: _list_table(rows), rows, as_json=json_)


@payments_app.command("show")
def show(ctx: typer.Context, payment_id: str, json_: JsonOpt = False) -> None:
    """Show one payment with its transfers and status history.

    Example: [bold]ctrip payments show pay_0123456789abcdef0123456789abcdef --json[/]
    """
    from ctrip_cli import payments

    rt = ctx.obj
    with rt.errors(), rt.open_session() as session:
        detail = payments.show_payment(session, payment_id)
    rt.show(lambda: _show_view(detail), detail.as_json(), as_json=json_)


def _detail_table(p: dict[str, Any]) -> Table:
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for key in (
        "id",
        "chain",
        "asset",
        "address",
        "amount",
        "amount_received",
        "status",
    ):
        table.add_row(key, str(p[key]))
    table.add_row("late", "yes" if p["late"] else "no")
    for key in ("reference", "created_at", "expires_at"):
        table.add_row(key, str(p[key] or "-"))
    return table


def _list_table(rows: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(
        "id", "chain", "asset", "amount", "received", "status", "address", "expires"
    )
    for p in rows:
        status = p["status"] + (" (late)" if p["late"] else "")
        table.add_row(
            p["id"],
            p["chain"],
            p["asset"],
            p["amount"],
            p["amount_received"],
            status,
            p["address"],
            p["expires_at"],
        )
    return table


def _show_view(detail: PaymentDetail) -> Table:
    from rich.table import Table

    outer = Table.grid(padding=(1, 0))
    outer.add_row(_detail_table(detail.payment))
    transfers = Table("tx", "log", "block", "amount", title="transfers")
    for t in detail.transfers:
        transfers.add_row(
            t["tx_hash"], str(t["log_index"]), str(t["block_number"]), t["amount"]
        )
    history = Table("at", "from", "to", "reason", title="history")
    for h in detail.history:
        history.add_row(h["at"], h["from"] or "-", h["to"], h["reason"] or "")
    outer.add_row(transfers)
    outer.add_row(history)
    return outer
