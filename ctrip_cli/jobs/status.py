"""What an operator needs at a glance: lag, RPC health, payments, sweeps, outbox, passes.

`run` reads the database plus the endpoint probes the CLI hands it (it never calls a
node itself); `status_health.assess` turns that snapshot into the reasons
`status --check` exits 3.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from ctrip_cli.config import ChainConfig, StatusSettings
from ctrip_cli.db import queries
from ctrip_cli.db.models import JobRun, Payment, SweepTransaction
from ctrip_cli.domain.statuses import PaymentStatus
from ctrip_cli.jobs import passes, status_health
from ctrip_cli.jobs.status_model import ChainStatus as ChainStatus
from ctrip_cli.jobs.status_model import Endpoint as Endpoint
from ctrip_cli.jobs.status_model import GasPayer as GasPayer
from ctrip_cli.jobs.status_model import OpenDifference as OpenDifference
from ctrip_cli.jobs.status_model import Outbox as Outbox
from ctrip_cli.jobs.status_model import PassStatus as PassStatus
from ctrip_cli.jobs.status_model import ReconcileStatus as ReconcileStatus
from ctrip_cli.jobs.status_model import StatusResult as StatusResult
from ctrip_cli.jobs.status_model import SweepStatus as SweepStatus
from ctrip_cli.jobs.status_model import pass_key

# Gas of one token sweep's top-up (21k) plus an ERC-20 transfer (~50-65k), rounded up.
TOKEN_SWEEP_GAS = 100_000
# sweep_transactions states that still need the chain to act (see models.SweepTransaction).
SWEEP_IN_FLIGHT = queries.SWEEP_LIVE_STATES


def chains_in_use(session: Session, names: Sequence[str]) -> list[str]:
    """Chains with a scan cursor or any payment; only these are probed by default."""
    used = set(session.scalars(select(Payment.chain).distinct()))
    return [n for n in names if n in used or queries.get_cursor(session, n)]


def max_lag_blocks(cfg: ChainConfig, settings: StatusSettings) -> int:
    """The lag `--check` tolerates: chains.yaml's max_lag_blocks, else time-based."""
    if cfg.max_lag_blocks is not None:
        return cfg.max_lag_blocks
    by_time = math.ceil(settings.max_lag_s / cfg.block_time_s)
    return max(settings.min_lag_blocks, by_time)


def run(
    session: Session,
    endpoints: Mapping[str, Sequence[Endpoint]],
    *,
    chains: Mapping[str, ChainConfig],
    now: datetime,
    settings: StatusSettings,
    gas_payers: Mapping[str, GasPayer] | None = None,
) -> StatusResult:
    """Collect the status of `chains`; a chain absent from `endpoints` was not probed.

    Raises:
        DatabaseError: (through the CLI's error edge) the database is unreachable.
    """
    per_chain = _payment_counts(session)
    in_use = set(chains_in_use(session, list(chains)))
    sweeps = _sweeps(session, now - timedelta(seconds=settings.sweep_stuck_s))
    reconciled = _reconciles(session, now)
    statuses = {
        name: _chain_status(
            session,
            cfg,
            endpoints.get(name),
            now=now,
            settings=settings,
            in_use=name in in_use,
            payments=per_chain.get(name, {}),
            sweeps=sweeps.get(name, _NO_SWEEPS),
            gas_payer=(gas_payers or {}).get(name),
            reconcile=reconciled.get(name),
        )
        for name, cfg in chains.items()
    }
    ran = {pass_key(p.job, p.chain): p for p in _passes(session, list(chains), now)}
    result = StatusResult(
        chains=statuses,
        payments=_totals(per_chain, chains),
        webhooks=_event_counts(session),
        payments_oldest=_payments_oldest(session, list(chains)),
        outbox=_outbox(session, now),
        passes=ran,
        checked_at=now,
    )
    problems, warnings = status_health.assess(result, now=now, settings=settings)
    return dataclasses.replace(
        result, healthy=not problems, problems=problems, warnings=warnings
    )


# -- chains ------------------------------------------------------------------------


def _chain_status(
    session: Session,
    cfg: ChainConfig,
    probes: Sequence[Endpoint] | None,
    *,
    now: datetime,
    settings: StatusSettings,
    in_use: bool,
    payments: dict[str, int],
    sweeps: SweepStatus,
    gas_payer: GasPayer | None,
    reconcile: ReconcileStatus | None = None,
) -> ChainStatus:
    cursor_row = queries.get_cursor(session, cfg.name)
    cursor = cursor_row.block_number if cursor_row else None
    live = [e for e in probes or () if e.ok and e.head is not None]
    best = max(live, key=lambda e: e.head or 0) if live else None
    head = best.head if best else None
    lag = max(head - cursor, 0) if head is not None and cursor is not None else None
    stamp = best.head_timestamp if best else None
    return ChainStatus(
        in_use=in_use,
        head=head,
        cursor=cursor,
        lag_blocks=lag,
        lag_s=None if lag is None else round(lag * cfg.block_time_s, 1),
        max_lag_blocks=max_lag_blocks(cfg, settings),
        head_age_s=None if stamp is None else max(now.timestamp() - stamp, 0.0),
        rpc=_rpc_health(probes),
        endpoints=list(probes or ()),
        payments=dict(payments),
        sweeps=sweeps,
        gas_payer=_gas_need(gas_payer, sweeps),
        reconcile=reconcile,
    )


def _gas_need(payer: GasPayer | None, sweeps: SweepStatus) -> GasPayer | None:
    if payer is None or payer.gas_price_wei is None:
        return payer
    per_sweep = TOKEN_SWEEP_GAS * payer.gas_price_wei + (payer.l1_fee_wei or 0)
    need = sweeps.awaiting_tokens * per_sweep
    return dataclasses.replace(payer, needed_wei=need)


def _rpc_health(probes: Sequence[Endpoint] | None) -> str:
    if probes is None:
        return "not checked"
    up = sum(e.ok for e in probes)
    if up == len(probes):
        return "up"
    return "down" if up == 0 else "degraded"


# -- payments and webhooks ---------------------------------------------------------


def _payment_counts(session: Session) -> dict[str, dict[str, int]]:
    stmt = select(Payment.chain, Payment.status, func.count()).group_by(
        Payment.chain, Payment.status
    )
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for chain, status, n in session.execute(stmt).all():
        counts[chain][status] = int(n)
    return dict(counts)


def _totals(
    per_chain: Mapping[str, Mapping[str, int]], chains: Mapping[str, ChainConfig]
) -> dict[str, int]:
    totals: dict[str, int] = {}
    for chain, counts in per_chain.items():
        if chain in chains:
            for status, n in counts.items():
                totals[status] = totals.get(status, 0) + n
    return totals


def _payments_oldest(session: Session, chains: list[str]) -> dict[str, datetime | None]:
    """Created-at of the oldest pending payment; detected-at of the oldest detected."""
    oldest: dict[str, datetime | None] = {}
    for status, column in (
        (PaymentStatus.PENDING, Payment.created_at),
        (PaymentStatus.DETECTED, Payment.detected_at),
    ):
        stmt = select(func.min(column)).where(
            Payment.status == status, Payment.chain.in_(chains)
        )
        oldest[str(status)] = _aware(session.scalar(stmt))
    return oldest


def _event_counts(session: Session) -> dict[str, int]:
    return queries.count_events_by_status(session)


def _outbox(session: Session, now: datetime) -> Outbox:
    summary = queries.outbox_summary(session, now)
    age = summary["oldest_due_age_s"]
    return Outbox(
        due=summary["due"],
        retrying=summary["retrying"],
        failed=summary["failed"],
        skipped=summary.get("skipped", 0),
        oldest_due_at=None if age is None else now - timedelta(seconds=age),
        oldest_due_age_s=age,
    )


# -- sweeps ------------------------------------------------------------------------

_NO_SWEEPS = SweepStatus(0, 0, None, 0, 0, None, {})


def _sweeps(session: Session, stuck_before: datetime) -> dict[str, SweepStatus]:
    by_state: dict[str, dict[str, int]] = defaultdict(dict)
    stmt = select(
        SweepTransaction.chain, SweepTransaction.state, func.count()
    ).group_by(SweepTransaction.chain, SweepTransaction.state)
    for chain, state, n in session.execute(stmt).all():
        by_state[chain][state] = int(n)
    stuck = _stuck_purposes(session, stuck_before)
    awaiting = _awaiting_sweep(session)
    unswept = _unswept(session)
    result = {}
    for chain in {*by_state, *stuck, *awaiting, *unswept}:
        states = by_state.get(chain, {})
        n_stuck, since = stuck.get(chain, (0, None))
        total, tokens, oldest = awaiting.get(chain, (0, 0, None))
        result[chain] = SweepStatus(
            awaiting=total,
            awaiting_tokens=tokens,
            awaiting_since=oldest,
            in_flight=sum(states.get(s, 0) for s in SWEEP_IN_FLIGHT),
            stuck=n_stuck,
            oldest_stuck_since=since,
            by_state=states,
            held_for_refund=unswept.get(chain, {}).get(PaymentStatus.EXPIRED, 0),
            unswept_settled=unswept.get(chain, {}).get(PaymentStatus.SETTLED, 0),
        )
    return result


def _unswept(session: Session) -> dict[str, dict[str, int]]:
    """Expired and settled payments per chain whose money is not all swept."""
    stmt = (
        select(Payment.chain, Payment.status, func.count())
        .where(
            Payment.status.in_([PaymentStatus.EXPIRED, PaymentStatus.SETTLED]),
            # Exact on both dialects: canonical digits compare as equal text.
            Payment.amount_received != Payment.amount_swept,
        )
        .group_by(Payment.chain, Payment.status)
    )
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for chain, status, n in session.execute(stmt).all():
        out[chain][status] = int(n)
    return dict(out)


def _stuck_purposes(
    session: Session, before: datetime
) -> dict[str, tuple[int, datetime | None]]:
    """Purposes still in flight whose first attempt is older than `before`.

    Fee-bump replacements share the purpose, so a sweep that is replaced again and
    again still counts as stuck from its first attempt. Only purposes with a live
    attempt are read (through the state and purpose indexes), not the whole history.
    """
    tx = SweepTransaction
    live = (
        select(tx.chain, tx.purpose)
        .where(tx.state.in_(SWEEP_IN_FLIGHT))
        .distinct()
        .subquery()
    )
    firsts = (
        select(tx.chain, func.min(tx.created_at).label("first"))
        .join(live, and_(tx.chain == live.c.chain, tx.purpose == live.c.purpose))
        .group_by(tx.chain, tx.purpose)
        .subquery()
    )
    stmt = (
        select(firsts.c.chain, func.count(), func.min(firsts.c.first))
        .where(firsts.c.first < before)
        .group_by(firsts.c.chain)
    )
    return {c: (int(n), _aware(t)) for c, n, t in session.execute(stmt).all()}


def _awaiting_sweep(
    session: Session,
) -> dict[str, tuple[int, int, datetime | None]]:
    token = case((Payment.token_address.is_not(None), 1), else_=0)
    stmt = (
        select(
            Payment.chain, func.count(), func.sum(token), func.min(Payment.confirmed_at)
        )
        .where(Payment.status == PaymentStatus.CONFIRMED)
        .group_by(Payment.chain)
    )
    return {
        c: (int(n), int(t or 0), _aware(at))
        for c, n, t, at in session.execute(stmt).all()
    }


# -- reconcile ---------------------------------------------------------------------


def _reconciles(session: Session, now: datetime) -> dict[str, ReconcileStatus]:
    """Per chain: the last reconcile's block and time, and what is still open."""
    cursors = queries.reconcile_cursors(session)
    opened: dict[str, dict[str, int]] = defaultdict(dict)
    units: dict[str, dict[str, int]] = defaultdict(dict)
    for chain, asset, kind, n, total in queries.open_difference_totals(session):
        opened[chain][kind] = opened[chain].get(kind, 0) + n
        units[chain][f"{asset}:{kind}"] = total
    listed: dict[str, list[OpenDifference]] = defaultdict(list)
    for d in queries.open_differences_all(session, limit=50 * max(len(opened), 1)):
        if len(listed[d.chain]) < 50:
            listed[d.chain].append(
                OpenDifference(
                    d.address,
                    d.asset,
                    d.kind,
                    str(d.amount),
                    d.created_at,
                    d.last_seen_block,
                    d.note,
                )
            )
    out = {}
    for chain in {*cursors, *opened}:
        c = cursors.get(chain)
        out[chain] = ReconcileStatus(
            block=None if c is None else c.block_number,
            at=None if c is None else c.at,
            age_s=None if c is None else max((now - c.at).total_seconds(), 0.0),
            open=dict(opened.get(chain, {})),
            open_base_units=dict(units.get(chain, {})),
            differences=listed.get(chain, []),
        )
    return out


# -- passes ------------------------------------------------------------------------

# Each pass is looked up through the (job, chain, started_at) index, newest first, so
# the cost does not grow with the job_runs history.
RECENT = timedelta(hours=1)
FAILURE_LOOKBACK = timedelta(days=7)


def _passes(session: Session, chains: Sequence[str], now: datetime) -> list[PassStatus]:
    """The passes of the registry that have run, each in the scopes it runs under."""
    out = []
    for p in passes.REGISTRY:
        job = p.name
        for chain in passes.scopes(p, list(chains)):
            last = _latest(session, job, chain)
            if last is None:
                continue
            ok = last if last.outcome == "ok" else _latest(session, job, chain, "ok")
            bad = (
                last
                if last.outcome == "error"
                else _latest(session, job, chain, "error", since=now - FAILURE_LOOKBACK)
            )
            out.append(_pass(last, ok, bad, _recent(session, job, chain, now - RECENT)))
    return out


def _latest(
    session: Session,
    job: str,
    chain: str,
    outcome: str | None = None,
    *,
    since: datetime | None = None,
) -> JobRun | None:
    stmt = select(JobRun).where(JobRun.job == job, JobRun.chain == chain)
    if outcome is not None:
        stmt = stmt.where(JobRun.outcome == outcome)
    if since is not None:
        stmt = stmt.where(JobRun.started_at >= since)
    order = (JobRun.started_at.desc(), JobRun.id.desc())
    return session.scalars(stmt.order_by(*order).limit(1)).first()


def _recent(session: Session, job: str, chain: str, since: datetime) -> list[Any]:
    stmt = select(JobRun.outcome, JobRun.started_at, JobRun.finished_at).where(
        JobRun.job == job, JobRun.chain == chain, JobRun.started_at >= since
    )
    return list(session.execute(stmt).all())


def _pass(
    last: JobRun, ok: JobRun | None, bad: JobRun | None, recent: list[Any]
) -> PassStatus:
    runs: dict[str, int] = defaultdict(int)
    took = []
    for outcome, started, finished in recent:
        runs[outcome] += 1
        if finished is not None:
            took.append((finished - started).total_seconds())
    finished = last.finished_at
    return PassStatus(
        job=last.job,
        chain=last.chain,
        last_run_at=finished or last.started_at,
        last_outcome=last.outcome,
        last_duration_s=None
        if finished is None
        else round((finished - last.started_at).total_seconds(), 3),
        last_success=None if ok is None else ok.finished_at or ok.started_at,
        last_failure=None if bad is None else bad.finished_at or bad.started_at,
        last_error=None if bad is None else bad.error,
        last_summary=None if ok is None else _summary(ok.summary),
        recent_runs=dict(runs),
        recent_duration_avg_s=round(sum(took) / len(took), 3) if took else None,
        recent_duration_max_s=round(max(took), 3) if took else None,
    )


def _summary(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else {"result": data}


def _aware(value: Any) -> datetime | None:
    """Aggregates bypass UTCDateTime's result processing; make them aware UTC."""
    if value is None:
        return None
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(at, datetime):
        raise TypeError(f"expected a datetime from the database, got {type(at)}")
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
