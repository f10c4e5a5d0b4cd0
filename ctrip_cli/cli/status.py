"""`ctrip status`: lag, RPC health, payments, sweeps, outbox and passes at a glance.

The CLI probes each RPC endpoint of the chains in use (concurrently, with a short
timeout) and hands the results to `jobs.status.run`, which reads the database.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table

from ctrip_cli.cli import app

if TYPE_CHECKING:
    import httpx

    from ctrip_cli.cli.runtime import Runtime
    from ctrip_cli.config import ChainConfig, Settings
    from ctrip_cli.jobs import status as status_job

FORMATS = ("table", "json", "prometheus")
_PAYMENT_STATUSES = ("pending", "detected", "confirmed", "settled", "expired")


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


def collect(rt: Runtime, chain: str | None) -> status_job.StatusResult:
    """Probe the chains in use (or `chain`), then read the database."""
    from ctrip_cli.jobs import status as status_job

    settings = rt.settings
    names = [chain] if chain else list(settings.chains)
    chains = {n: settings.chain(n) for n in names}
    with rt.open_session() as session:
        probed = names if chain else status_job.chains_in_use(session, names)
    endpoints = probe_all(
        {n: chains[n] for n in probed}, timeout_s=settings.status.probe_timeout_s
    )
    gas = _gas_payers(settings, {n: chains[n] for n in probed}, endpoints)
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


# -- probing -----------------------------------------------------------------------


def endpoint_label(url: str, index: int) -> str:
    """`#1 host:port`, or `endpoint #1` when the URL may carry a secret."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return f"endpoint #{index}"
    secretive = parts.username or parts.password or parts.query or parts.fragment
    if secretive or parts.path not in ("", "/") or not host:
        return f"endpoint #{index}"
    return f"#{index} {host}" + (f":{port}" if port else "")


def probe_all(
    chains: Mapping[str, ChainConfig], *, timeout_s: float
) -> dict[str, list[status_job.Endpoint]]:
    """Probe every endpoint of `chains` at once; a dead one costs at most timeout_s."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [
        (name, i, url.get_secret_value(), cfg.chain_id)
        for name, cfg in chains.items()
        for i, url in enumerate(cfg.rpc_urls, start=1)
    ]
    out: dict[str, list[status_job.Endpoint]] = {name: [] for name in chains}
    if not jobs:
        return out
    with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
        results = pool.map(lambda j: probe(j[2], j[1], j[3], timeout_s), jobs)
        for (name, *_), endpoint in zip(jobs, results, strict=True):
            out[name].append(endpoint)
    return out


def probe(url: str, index: int, chain_id: int, timeout_s: float) -> status_job.Endpoint:
    """One endpoint: its chain id and latest block; errors never show the URL."""
    import httpx

    from ctrip_cli.jobs import status as status_job

    label = endpoint_label(url, index)
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False) as http:
            actual = int(_rpc(http, url, "eth_chainId"), 16)
            started = time.monotonic()
            block = _rpc(http, url, "eth_getBlockByNumber", "latest", False)
            latency_ms = round((time.monotonic() - started) * 1000)
    except _ProbeError as exc:
        return status_job.Endpoint(label, ok=False, error=str(exc))
    except httpx.HTTPError as exc:
        return status_job.Endpoint(label, ok=False, error=type(exc).__name__)
    if actual != chain_id:
        error = f"serves chain id {actual}, chains.yaml says {chain_id}"
        return status_job.Endpoint(label, ok=False, error=error)
    return status_job.Endpoint(
        label,
        ok=True,
        head=int(block["number"], 16),
        head_timestamp=int(block["timestamp"], 16),
        latency_ms=latency_ms,
    )


class _ProbeError(Exception):
    pass


def _rpc(http: httpx.Client, url: str, method: str, *params: Any) -> Any:
    resp = http.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    )
    if resp.status_code != 200:
        raise _ProbeError(f"HTTP {resp.status_code}")
    try:
        body = resp.json()
        if "error" in body:
            raise _ProbeError(f"JSON-RPC error {body['error'].get('code')}")
        result = body["result"]
        if method == "eth_getBlockByNumber":
            int(result["number"], 16)
        return result
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _ProbeError("not a JSON-RPC answer") from None


def _gas_payers(
    settings: Settings,
    chains: Mapping[str, ChainConfig],
    endpoints: Mapping[str, Sequence[status_job.Endpoint]],
) -> dict[str, status_job.GasPayer]:
    """The gas payer's balance on chains with tokens, when key material is configured."""
    if settings.mnemonic is None:
        return {}
    from ctrip_cli.chain.signer import KeyRing
    from ctrip_cli.errors import CtripError

    out = {}
    for name, cfg in chains.items():
        if not cfg.tokens or not any(e.ok for e in endpoints.get(name, ())):
            continue
        try:
            keys = KeyRing.for_chain(settings.mnemonic, cfg)
            address = keys.address(settings.sweep.gas_payer_path)
        except CtripError:
            continue
        out[name] = _balance(cfg, address, settings.status.probe_timeout_s)
    return out


def _balance(cfg: ChainConfig, address: str, timeout_s: float) -> status_job.GasPayer:
    import httpx

    from ctrip_cli.jobs import status as status_job

    errors = []
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as http:
        for url in (u.get_secret_value() for u in cfg.rpc_urls):
            try:
                wei = int(_rpc(http, url, "eth_getBalance", address, "latest"), 16)
                price = int(_rpc(http, url, "eth_gasPrice"), 16)
            except (_ProbeError, httpx.HTTPError, ValueError) as exc:
                errors.append(type(exc).__name__)
                continue
            return status_job.GasPayer(
                address,
                wei,
                symbol=cfg.native.symbol,
                decimals=cfg.native.decimals,
                gas_price_wei=price,
            )
    return status_job.GasPayer(address, None, error=", ".join(errors))


# -- the human view ----------------------------------------------------------------


def view(result: status_job.StatusResult) -> RenderableType:
    """The dashboard: a section per chain, then the queues, the passes and the verdict."""
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
        t.add_row("endpoint", f"{escape(e.label)}: {state}")
    t.add_row("payments", _counts(c.payments, _PAYMENT_STATUSES))
    s = c.sweeps
    sweeps = (
        f"awaiting {s.awaiting} ({s.awaiting_tokens} token) · in flight {s.in_flight}"
    )
    stuck = f"[red]stuck {s.stuck}[/]" if s.stuck else "stuck 0"
    t.add_row("sweeps", f"{sweeps} · {stuck}")
    if c.gas_payer is not None:
        t.add_row("gas payer", _gas(c.gas_payer, c))
    return t


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
    from ctrip_cli.jobs.status import human_age

    return human_age(seconds)


def _counts(counts: Mapping[str, int], known: Sequence[str]) -> str:
    """Every known status (zeros too) and any other found, e.g. `pending 2 · ...`."""
    keys = [*known, *sorted(set(counts) - set(known))]
    return " · ".join(f"{k} {counts.get(k, 0)}" for k in keys)
