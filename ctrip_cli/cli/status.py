"""`ctrip status`: lag, RPC health, payments, sweeps, outbox and passes at a glance.

The CLI probes each RPC endpoint of the chains in use (concurrently, with a short
timeout) and hands the results to `jobs.status.run`, which reads the database.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from ctrip_cli.cli import app
from ctrip_cli.domain.statuses import PaymentStatus

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from ctrip_cli.cli.runtime import Runtime
    from ctrip_cli.jobs import status as status_job

FORMATS = ("table", "json", "prometheus")
_PAYMENT_STATUSES = tuple(PaymentStatus)


@app.command()
def status(
    ctx: typer.Context,
    chain: Annotated[str | None, typer.Option(help="Only this chain.")] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Same as --format json.")
    ] = False,
    format_: Annotated[
        str,
        typer.Option("--format", help="table, json or prometheus (exposition)."),
    ] = "table",
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 3 and list the reasons when unhealthy."),
    ] = False,
    watch: Annotated[
        bool,
        typer.Option("--watch", help="Refresh the view until Ctrl-C (not a pass)."),
    ] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.5, help="Seconds between --watch refreshes."),
    ] = 5.0,
) -> None:
    """Show chain lag and RPC health, payments, sweeps, the webhook outbox and passes.

    Only chains in use (with payments or a scan cursor) are probed, unless --chain
    names one. Endpoints are shown as `#N host` or, when the URL carries credentials
    or a path token, as `endpoint #N`.

    Examples:
      [bold]ctrip status[/]                       dashboard
      [bold]ctrip status --check[/]               monitors: exit 3 + reasons on stderr
      [bold]ctrip status --json[/]                one JSON object
      [bold]ctrip status --format prometheus[/]   metrics exposition
      [bold]ctrip status --watch --interval 2[/]  refresh every 2 s
    """
    rt: Runtime = ctx.obj
    fmt = "json" if json_ else format_
    if fmt not in FORMATS:
        raise typer.BadParameter(
            f"{fmt!r}: use table, json or prometheus", param_hint="--format"
        )
    with rt.errors():
        if watch:
            _watch(rt, chain, interval)
            return
        result = collect(rt, chain)
    if fmt == "prometheus":
        from ctrip_cli import metrics

        sys.stdout.write(metrics.exposition(result))
        sys.stdout.flush()
    else:
        rt.show(lambda: view(result), result, as_json=fmt == "json")
    if check and not result.healthy:
        for problem in result.problems:
            rt.err.print(
                f"unhealthy: {problem}", markup=False, highlight=False, soft_wrap=True
            )
        raise typer.Exit(3)


def _limits(limits: dict[str, object]) -> str:
    """What the passes learnt the endpoint refuses or caps, e.g. `(max_batch 100)`."""
    from rich.markup import escape

    if not limits:
        return ""
    parts = []
    for key, value in sorted(limits.items()):
        shown = ",".join(str(v) for v in value) if isinstance(value, list) else value
        label = key if key.startswith("eth_") else key.replace("_", " ")
        parts.append(f"{label} {shown}")
    return escape(" (" + "; ".join(parts) + ")")


def collect(rt: Runtime, chain: str | None) -> status_job.StatusResult:
    """Probe the chains in use (or `chain`), then read the database."""
    from ctrip_cli.jobs import status as status_job

    settings = rt.settings
    names = [chain] if chain else list(settings.chains)
    chains = {n: settings.chain(n) for n in names}
    with rt.open_session() as session:
        probed = names if chain else status_job.chains_in_use(session, names)
    from ctrip_cli.cli import status_probe
    from ctrip_cli.db import rpc_limits

    endpoints = status_probe.probe_all(
        {n: chains[n] for n in probed},
        timeout_s=settings.status.probe_timeout_s,
        limits=rpc_limits.load_all(rt.engine),
    )
    gas = status_probe.gas_payers(settings, {n: chains[n] for n in probed}, endpoints)
    with rt.open_session() as session:
        return status_job.run(
            session,
            endpoints,
            chains=chains,
            now=rt.now(),
            settings=settings.status,
            gas_payers=gas,
        )


def _watch(rt: Runtime, chain: str | None, seconds: float) -> None:
    from rich.live import Live

    with Live(console=rt.out, auto_refresh=False) as live:
        try:
            while True:
                live.update(view(collect(rt, chain)), refresh=True)
                time.sleep(seconds)
        except KeyboardInterrupt:
            return


# -- the human view ----------------------------------------------------------------


def view(result: status_job.StatusResult) -> RenderableType:
    """The dashboard: a section per chain, then the queues, the passes and the verdict."""
    from rich.console import Group

    parts: list[RenderableType] = []
    unused = []
    for name, c in result.chains.items():
        if c.in_use or c.endpoints or c.cursor is not None:
            parts += [_chain_table(name, c, result.checked_at), ""]
        else:
            unused.append(name)
    if unused:
        parts += [
            f"[dim]not in use (no payments, never scanned): {', '.join(unused)}[/]",
            "",
        ]
    parts += [_queues(result), ""]
    if result.passes:
        parts += [_passes(result), ""]
    parts.append(_verdict(result))
    return Group(*parts)


def _chain_table(name: str, c: status_job.ChainStatus, now: datetime) -> Table:
    from rich.markup import escape
    from rich.table import Table

    color = {"up": "green", "degraded": "yellow", "down": "red"}.get(c.rpc, "dim")
    t = Table.grid(padding=(0, 2))
    t.title = f"[bold]{name}[/]  rpc [{color}]{c.rpc}[/]"
    t.title_justify = "left"
    t.add_column(style="dim")
    t.add_column()
    lag = "-" if c.lag_blocks is None else f"{c.lag_blocks:,} (~{_age(c.lag_s)})"
    t.add_row(
        "blocks",
        f"head {_n(c.head)} · cursor {_n(c.cursor)} · lag {lag} of {c.max_lag_blocks:,}",
    )
    if c.head_age_s is not None:
        t.add_row("head age", f"{_age(c.head_age_s)} since the head block was mined")
    for e in c.endpoints:
        state = f"[green]up[/] {e.latency_ms} ms" if e.ok else f"[red]down[/] {e.error}"
        t.add_row("endpoint", f"{escape(e.label)}: {state}{_limits(e.limits)}")
    t.add_row("payments", _counts(c.payments, _PAYMENT_STATUSES))
    s = c.sweeps
    oldest = (
        "" if s.awaiting_since is None else f", oldest {_ago(s.awaiting_since, now)}"
    )
    sweeps = f"awaiting {s.awaiting} ({s.awaiting_tokens} token{oldest})"
    sweeps += f" · in flight {s.in_flight}"
    stuck = f"[red]stuck {s.stuck}[/]" if s.stuck else "stuck 0"
    t.add_row("sweeps", f"{sweeps} · {stuck}")
    if s.held_for_refund or s.unswept_settled:
        t.add_row(
            "unswept",
            f"{s.held_for_refund} expired short (held for a refund) · "
            f"{s.unswept_settled} settled with later money (dust or next sweep)",
        )
    if c.gas_payer is not None:
        t.add_row("gas payer", _gas(c.gas_payer, c))
    if c.reconcile is not None:
        t.add_row("reconcile", _reconciled(c.reconcile, now))
    return t


def _reconciled(r: status_job.ReconcileStatus, now: datetime) -> str:
    last = "never" if r.block is None else f"#{r.block:,} {_ago(r.at, now)}"
    opened = " · ".join(f"{k} {n}" for k, n in sorted(r.open.items())) or "none"
    text = f"last {last} · open differences: {opened}"
    return f"[red]{text}[/]" if r.open.get("shortfall") else text


def _gas(g: status_job.GasPayer, c: status_job.ChainStatus) -> str:
    from ctrip_cli.money import format_units

    if g.balance_wei is None:
        return f"{g.address}: balance unknown ({g.error})"
    text = f"{g.address}: {format_units(g.balance_wei, g.decimals)} {g.symbol}"
    if g.needed_wei:
        need = f"~{format_units(g.needed_wei, g.decimals)} {g.symbol}"
        text += f"; {c.sweeps.awaiting_tokens} token sweep(s) need up to {need}"
        if g.balance_wei < g.needed_wei:
            return f"[red]{text}[/]"
    return text


def _queues(result: status_job.StatusResult) -> Table:
    from rich.table import Table

    t = Table.grid(padding=(0, 2))
    t.title = "[bold]payments and webhooks[/]"
    t.title_justify = "left"
    t.add_column(style="dim")
    t.add_column()
    t.add_row("payments", _counts(result.payments, _PAYMENT_STATUSES))
    for status, at in result.payments_oldest.items():
        if at is not None:
            ago = _age((result.checked_at - at).total_seconds())
            t.add_row(f"oldest {status}", f"{ago} ago ({at:%Y-%m-%d %H:%M:%S}Z)")
    o = result.outbox
    due = f"due {o.due}" + (
        "" if o.oldest_due_age_s is None else f" (oldest {_age(o.oldest_due_age_s)})"
    )
    failed = f"[red]failed {o.failed}[/]" if o.failed else "failed 0"
    t.add_row("webhooks", f"{due} · retrying {o.retrying} · {failed}")
    t.add_row("events", _counts(result.webhooks, ("pending", "delivered", "failed")))
    return t


def _passes(result: status_job.StatusResult) -> Table:
    from rich.markup import escape
    from rich.table import Table

    t = Table(
        "pass",
        "last run",
        "took",
        "last success",
        "last failure",
        title="passes",
        title_justify="left",
    )
    now = result.checked_at
    for key, p in result.passes.items():
        outcome = {"ok": "green", "error": "red"}.get(p.last_outcome, "yellow")
        t.add_row(
            key,
            f"[{outcome}]{p.last_outcome}[/] {_ago(p.last_run_at, now)}",
            "-" if p.last_duration_s is None else f"{p.last_duration_s:.2f}s",
            _ago(p.last_success, now),
            "-"
            if p.last_failure is None
            else f"{_ago(p.last_failure, now)}: {escape(p.last_error or '')}",
        )
    return t


def _verdict(result: status_job.StatusResult) -> RenderableType:
    from rich.markup import escape

    lines = [f"[yellow]warning[/]: {escape(w)}" for w in result.warnings]
    if result.healthy:
        lines.append("[green]healthy[/]")
    else:
        lines += [f"[red]unhealthy[/]: {escape(p)}" for p in result.problems]
    return "\n".join(lines)


def _ago(at: datetime | None, now: datetime) -> str:
    return "-" if at is None else f"{_age((now - at).total_seconds())} ago"


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _age(seconds: float | None) -> str:
    """`3h05m`, `7m12s`, `42s`."""
    from ctrip_cli.jobs.status_health import human_age

    return human_age(seconds)


def _counts(counts: Mapping[str, int], known: Sequence[str]) -> str:
    """Every known status (zeros too) and any other found, e.g. `pending 2 · ...`."""
    keys = [*known, *sorted(set(counts) - set(known))]
    return " · ".join(f"{k} {counts.get(k, 0)}" for k in keys)
