"""What `status --check` calls unhealthy (problems: exit 3) and what it only shows.

Pure functions over a `jobs.status_model.StatusResult`; the thresholds come from
`StatusSettings` and chains.yaml (see the README, "Operating ctrip").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from ctrip_cli import lifecycle
from ctrip_cli.config import StatusSettings
from ctrip_cli.jobs import passes
from ctrip_cli.jobs.status_model import (
    ChainStatus,
    Outbox,
    PassStatus,
    StatusResult,
    pass_key,
)


def assess(
    result: StatusResult, *, now: datetime, settings: StatusSettings
) -> tuple[list[str], list[str]]:
    """(problems that make `--check` exit 3, warnings that are only shown)."""
    problems: list[str] = []
    warnings: list[str] = []
    for name, chain in result.chains.items():
        problems.extend(_chain_problems(name, chain, result.passes))
        problems.extend(_reconcile_problems(name, chain))
        warnings.extend(_chain_warnings(name, chain))
        since = chain.sweeps.awaiting_since
        if since is not None and _seconds(now - since) > settings.sweep_stuck_s:
            warnings.append(
                f"chain {name}: {chain.sweeps.awaiting} confirmed payment(s) not swept, "
                f"the oldest for {human_age(_seconds(now - since))}; is `ctrip sweep "
                f"--chain {name}` running (with a treasury set), or are they uneconomic?"
            )
    for key, p in result.passes.items():
        limit = _stale_after_s(p.job, settings)
        if p.last_success is None or _seconds(now - p.last_success) > limit:
            problems.append(_stale(key, p, now, limit))
    problems.extend(_outbox_problems(result.outbox, settings))
    if result.outbox.retrying:
        warnings.append(
            f"webhooks: {result.outbox.retrying} event(s) are being retried after "
            "failed attempts; see `ctrip webhooks list --status pending`"
        )
    return problems, warnings


def _stale_after_s(job: str, settings: StatusSettings) -> int:
    """N x the pass's interval (the longer of its own and CTRIP_STATUS_INTERVAL_S)."""
    try:
        own = passes.by_name(job).interval_s or 0
    except KeyError:  # a job_runs row of a pass no longer registered
        own = 0
    return max(settings.interval_s, own) * settings.stale_factor


def _reconcile_problems(name: str, chain: ChainStatus) -> list[str]:
    r = chain.reconcile
    if r is None or not r.open.get("shortfall"):
        return []
    amounts = ", ".join(
        f"{units:,} base units of {key.split(':')[0]}"
        for key, units in sorted(r.open_base_units.items())
        if key.endswith(":shortfall")
    )
    return [
        f"chain {name}: {r.open['shortfall']} deposit address(es) hold less than the "
        f"ledger explains ({amounts}): funds moved by something ctrip did not sign; "
        "see the reconcile_differences table"
    ]


def _chain_warnings(name: str, chain: ChainStatus) -> list[str]:
    warnings = [
        f"chain {name}: RPC {e.label} is down ({e.error})"
        for e in chain.endpoints
        if not e.ok and chain.rpc == "degraded"
    ]
    payer = chain.gas_payer
    if payer and payer.needed_wei and (payer.balance_wei or 0) < payer.needed_wei:
        warnings.append(
            f"chain {name}: the gas payer holds less than the ~{payer.needed_wei:,} "
            f"wei that {chain.sweeps.awaiting_tokens} token sweep(s) may need"
        )
    inflows = (chain.reconcile.open if chain.reconcile else {}).get("inflow", 0)
    if inflows:
        warnings.append(
            f"chain {name}: {inflows} deposit address(es) hold money no payment asks "
            "for (found by reconcile); refund it or move it by hand"
        )
    failed = chain.sweeps.by_state.get("failed", 0)
    if failed:
        warnings.append(
            f"chain {name}: {failed} sweep transaction(s) failed on chain; "
            f"see `ctrip sweep --chain {name} --json`"
        )
    return warnings


def _chain_problems(
    name: str, chain: ChainStatus, passes: Mapping[str, PassStatus]
) -> list[str]:
    problems = []
    if chain.rpc == "down" and chain.in_use:
        reasons = "; ".join(f"{e.label}: {e.error}" for e in chain.endpoints)
        problems.append(f"chain {name}: no RPC endpoint answers ({reasons})")
    if chain.lag_blocks is not None and chain.lag_blocks > chain.max_lag_blocks:
        problems.append(
            f"chain {name}: scan lags {chain.lag_blocks:,} blocks "
            f"(~{human_age(chain.lag_s)}) behind the head; "
            f"the limit is {chain.max_lag_blocks:,} blocks"
        )
    if chain.in_use and pass_key("scan", name) not in passes:
        problems.append(
            f"chain {name}: in use but `ctrip scan --chain {name}` has never run"
        )
    if chain.sweeps.stuck:
        since = chain.sweeps.oldest_stuck_since
        problems.append(
            f"chain {name}: {chain.sweeps.stuck} sweep(s) stuck, unconfirmed since "
            f"{lifecycle.rfc3339(since)}; see `ctrip sweep --chain {name}` output"
        )
    return problems


def _stale(key: str, p: PassStatus, now: datetime, limit: int) -> str:
    if p.last_success is None:
        head = f"pass {key}: has never succeeded"
    else:
        age = human_age(_seconds(now - p.last_success))
        head = f"pass {key}: no success for {age} (limit {human_age(limit)})"
    return f"{head}; last run {p.last_outcome}" + (
        f": {p.last_error}" if p.last_outcome == "error" and p.last_error else ""
    )


def _outbox_problems(outbox: Outbox, settings: StatusSettings) -> list[str]:
    problems = []
    if outbox.failed:
        problems.append(
            f"webhooks: {outbox.failed} event(s) failed after their last attempt; "
            "fix the endpoint, then `ctrip webhooks retry --all-failed`"
        )
    age = outbox.oldest_due_age_s
    if age is not None and age > settings.webhook_max_due_s:
        problems.append(
            f"webhooks: the oldest due event has waited {human_age(age)} (limit "
            f"{human_age(settings.webhook_max_due_s)}); "
            "is `ctrip deliver-webhooks` running?"
        )
    return problems


def _seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def human_age(seconds: float | None) -> str:
    """`3h05m`, `7m12s`, `42s`."""
    if seconds is None:
        return "?"
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"
