"""Prometheus exposition of a status snapshot: `status --format prometheus`, textfiles, push.

prometheus-client is imported inside the functions, so commands that never export
metrics do not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctrip_cli.jobs import status as status_job
from ctrip_cli.jobs.status import StatusResult

if TYPE_CHECKING:
    from datetime import datetime

    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric
    from sqlalchemy.orm import Session

    from ctrip_cli.config import Settings


def registry(result: StatusResult) -> CollectorRegistry:
    """A fresh registry (never the global one) holding `result` as metric families."""
    from prometheus_client import CollectorRegistry

    reg = CollectorRegistry(auto_describe=False)
    reg.register(_StatusCollector(result))
    return reg


def exposition(result: StatusResult) -> str:
    """The text exposition format (what a scrape or a textfile collector reads)."""
    from prometheus_client import generate_latest

    return generate_latest(registry(result)).decode()


def write_textfile(path: Path, result: StatusResult) -> None:
    """Write a node-exporter textfile atomically (temp file + rename)."""
    from prometheus_client import write_to_textfile

    write_to_textfile(str(path), registry(result))


def push(gateway: str, result: StatusResult) -> None:
    """Replace the `ctrip` group on a Pushgateway with `result`."""
    from prometheus_client import push_to_gateway

    push_to_gateway(gateway, job="ctrip", registry=registry(result), timeout=5)


def publish(session: Session, settings: Settings, *, now: datetime) -> None:
    """What a pass exports: the database's view (no RPC probes) to each target set.

    Every pass rewrites the whole picture from the database, so the file or group is
    the same whichever pass of whichever chain wrote it last.
    """
    cfg = settings.status
    snapshot = status_job.run(
        session, {}, chains=settings.chains, now=now, settings=cfg
    )
    if cfg.metrics_textfile is not None:
        write_textfile(cfg.metrics_textfile, snapshot)
    if cfg.metrics_pushgateway is not None:
        push(cfg.metrics_pushgateway.get_secret_value(), snapshot)


class _StatusCollector:
    def __init__(self, result: StatusResult) -> None:
        self.result = result

    def collect(self) -> Iterator[Metric]:
        yield from _health(self.result)
        yield from _chains(self.result)
        yield from _queues(self.result)
        yield from _passes(self.result)


def _gauge(name: str, doc: str, labels: list[str]) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(name, doc, labels=labels)


def _health(r: StatusResult) -> Iterator[Metric]:
    healthy = _gauge("ctrip_healthy", "1 when `status --check` would pass.", [])
    healthy.add_metric([], 1.0 if r.healthy else 0.0)
    problems = _gauge("ctrip_problems", "Reasons `status --check` would fail.", [])
    problems.add_metric([], float(len(r.problems)))
    stamp = _gauge(
        "ctrip_status_timestamp_seconds", "When this snapshot was taken.", []
    )
    stamp.add_metric([], r.checked_at.timestamp())
    yield from (healthy, problems, stamp)


def _chains(r: StatusResult) -> Iterator[Metric]:
    names = {
        "head_block": "Latest block the RPC endpoints report.",
        "cursor_block": "Last block the scan pass fully read.",
        "lag_blocks": "Blocks between the cursor and the head.",
        "lag_seconds": "lag_blocks x block_time_s.",
        "max_lag_blocks": "The lag `status --check` tolerates.",
        "head_age_seconds": "Age of the head block (a stalled node grows it).",
    }
    values = {
        "head_block": lambda c: c.head,
        "cursor_block": lambda c: c.cursor,
        "lag_blocks": lambda c: c.lag_blocks,
        "lag_seconds": lambda c: c.lag_s,
        "max_lag_blocks": lambda c: c.max_lag_blocks,
        "head_age_seconds": lambda c: c.head_age_s,
    }
    for key, doc in names.items():
        g = _gauge(f"ctrip_chain_{key}", doc, ["chain"])
        for name, c in r.chains.items():
            value = values[key](c)
            if value is not None:
                g.add_metric([name], float(value))
        yield g
    yield from _endpoints(r)
    yield from _sweeps(r)
    yield from _reconcile(r)


def _reconcile(r: StatusResult) -> Iterator[Metric]:
    block = _gauge(
        "ctrip_reconcile_last_block", "Block the last reconcile compared at.", ["chain"]
    )
    stamp = _gauge(
        "ctrip_reconcile_last_timestamp_seconds",
        "When the last reconcile ran.",
        ["chain"],
    )
    age = _gauge(
        "ctrip_reconcile_age_seconds", "Time since the last reconcile.", ["chain"]
    )
    count = _gauge(
        "ctrip_reconcile_open_differences",
        "Open differences between balances and the ledger, by kind.",
        ["chain", "kind"],
    )
    units = _gauge(
        "ctrip_reconcile_difference_base_units",
        "Base units of the open differences (inflow: unexplained money on a deposit "
        "address; shortfall: money missing from one).",
        ["chain", "asset", "kind"],
    )
    for name, c in r.chains.items():
        rec = c.reconcile
        if rec is None:
            continue
        if rec.block is not None and rec.at is not None and rec.age_s is not None:
            block.add_metric([name], float(rec.block))
            stamp.add_metric([name], rec.at.timestamp())
            age.add_metric([name], rec.age_s)
        for kind in ("inflow", "shortfall"):
            count.add_metric([name, kind], float(rec.open.get(kind, 0)))
        for key, total in sorted(rec.open_base_units.items()):
            asset, _, kind = key.rpartition(":")
            units.add_metric([name, asset, kind], float(total))
    yield from (block, stamp, age, count, units)


def _endpoints(r: StatusResult) -> Iterator[Metric]:
    up = _gauge(
        "ctrip_rpc_endpoint_up", "1 when the endpoint answered.", ["chain", "endpoint"]
    )
    latency = _gauge(
        "ctrip_rpc_endpoint_latency_seconds",
        "Time to fetch the latest block.",
        ["chain", "endpoint"],
    )
    for name, c in r.chains.items():
        for e in c.endpoints:
            up.add_metric([name, e.label], 1.0 if e.ok else 0.0)
            if e.latency_ms is not None:
                latency.add_metric([name, e.label], e.latency_ms / 1000)
    yield from (up, latency)


def _sweeps(r: StatusResult) -> Iterator[Metric]:
    awaiting = _gauge(
        "ctrip_sweeps_awaiting", "Confirmed payments not yet swept.", ["chain"]
    )
    in_flight = _gauge(
        "ctrip_sweeps_in_flight", "Sweep transactions not final.", ["chain"]
    )
    stuck = _gauge("ctrip_sweeps_stuck", "Sweeps in flight for too long.", ["chain"])
    states = _gauge(
        "ctrip_sweep_transactions", "Sweep transactions by state.", ["chain", "state"]
    )
    gas = _gauge(
        "ctrip_gas_payer_balance", "Gas payer balance in native units.", ["chain"]
    )
    for name, c in r.chains.items():
        awaiting.add_metric([name], float(c.sweeps.awaiting))
        in_flight.add_metric([name], float(c.sweeps.in_flight))
        stuck.add_metric([name], float(c.sweeps.stuck))
        for state, n in c.sweeps.by_state.items():
            states.add_metric([name, state], float(n))
        if c.gas_payer is not None and c.gas_payer.balance_wei is not None:
            gas.add_metric([name], c.gas_payer.balance_wei / 10**18)
    yield from (awaiting, in_flight, stuck, states, gas)


def _queues(r: StatusResult) -> Iterator[Metric]:
    payments = _gauge(
        "ctrip_payments", "Payments by chain and status.", ["chain", "status"]
    )
    for name, c in r.chains.items():
        for status, n in c.payments.items():
            payments.add_metric([name, status], float(n))
    oldest = _gauge(
        "ctrip_payment_oldest_age_seconds",
        "Age of the oldest pending (since creation) and detected (since detection).",
        ["status"],
    )
    for status, at in r.payments_oldest.items():
        if at is not None:
            oldest.add_metric([status], (r.checked_at - at).total_seconds())
    events = _gauge("ctrip_webhook_events", "Outbox events by status.", ["status"])
    for status, n in r.webhooks.items():
        events.add_metric([status], float(n))
    outbox = _gauge(
        "ctrip_webhook_outbox", "Due, retrying and failed events.", ["state"]
    )
    outbox.add_metric(["due"], float(r.outbox.due))
    outbox.add_metric(["retrying"], float(r.outbox.retrying))
    outbox.add_metric(["failed"], float(r.outbox.failed))
    age = _gauge(
        "ctrip_webhook_oldest_due_age_seconds",
        "How long the oldest due event waits.",
        [],
    )
    age.add_metric([], r.outbox.oldest_due_age_s or 0.0)
    yield from (payments, oldest, events, outbox, age)


def _passes(r: StatusResult) -> Iterator[Metric]:
    # `pass`, not `job`: Prometheus and the Pushgateway reserve `job` for the target.
    labels = ["pass", "chain"]
    runs = _gauge(
        "ctrip_pass_recent_runs",
        "Passes run in the last hour, by outcome.",
        [*labels, "outcome"],
    )
    took = _gauge(
        "ctrip_pass_recent_duration_seconds",
        "Wall time of the passes of the last hour (avg, max).",
        [*labels, "stat"],
    )
    last = _gauge(
        "ctrip_pass_last_duration_seconds", "Wall time of the last pass.", labels
    )
    ok = _gauge("ctrip_pass_last_ok", "1 when the last pass succeeded.", labels)
    stamps = {
        "run": _gauge(
            "ctrip_pass_last_run_timestamp_seconds", "End of the last pass.", labels
        ),
        "success": _gauge(
            "ctrip_pass_last_success_timestamp_seconds",
            "End of the last success.",
            labels,
        ),
        "failure": _gauge(
            "ctrip_pass_last_failure_timestamp_seconds",
            "End of the last failure (within 7 days).",
            labels,
        ),
    }
    numbers = _gauge(
        "ctrip_pass_last_result",
        "Numbers the last successful pass reported.",
        [*labels, "field"],
    )
    for p in r.passes.values():
        key = [p.job, p.chain]
        for outcome, n in p.recent_runs.items():
            runs.add_metric([*key, outcome], float(n))
        for stat, value in (
            ("avg", p.recent_duration_avg_s),
            ("max", p.recent_duration_max_s),
        ):
            if value is not None:
                took.add_metric([*key, stat], value)
        if p.last_duration_s is not None:
            last.add_metric(key, p.last_duration_s)
        ok.add_metric(key, 1.0 if p.last_outcome == "ok" else 0.0)
        for which, at in (
            ("run", p.last_run_at),
            ("success", p.last_success),
            ("failure", p.last_failure),
        ):
            if at is not None:
                stamps[which].add_metric(key, at.timestamp())
        for field, value in (p.last_summary or {}).items():
            if isinstance(value, int | float):
                numbers.add_metric([*key, field], float(value))
    yield from (runs, took, last, ok, *stamps.values(), numbers)
