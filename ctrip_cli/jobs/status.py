"""What an operator needs at a glance: chain lag, payments, outbox, last runs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ctrip_cli.chain.client import ChainClient
from ctrip_cli.config import ChainConfig
from ctrip_cli.db import queries
from ctrip_cli.errors import ChainError

PASSES = ("scan", "confirm", "sweep")


@dataclass(frozen=True, slots=True)
class ChainStatus:
    head: int | None
    cursor: int | None
    lag_blocks: int | None
    rpc: str  # "up" or "down: <reason>"


@dataclass(frozen=True, slots=True)
class RunInfo:
    at: datetime
    outcome: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class StatusResult:
    chains: dict[str, ChainStatus]
    payments: dict[str, int]
    webhooks: dict[str, int]
    last_success: dict[str, RunInfo] = field(default_factory=dict)
    last_failure: dict[str, RunInfo] = field(default_factory=dict)
    healthy: bool = True
    problems: list[str] = field(default_factory=list)


def _chain_status(
    session: Session, cfg: ChainConfig, client: ChainClient | None
) -> ChainStatus:
    cursor_row = queries.get_cursor(session, cfg.name)
    cursor = cursor_row.block_number if cursor_row else None
    head: int | None = None
    rpc = "up"
    if client is None:
        rpc = "not checked (unused)"
    else:
        try:
            head = client.head()
        except ChainError as exc:
            rpc = f"down: {exc}"
    lag = head - cursor if head is not None and cursor is not None else None
    return ChainStatus(head=head, cursor=cursor, lag_blocks=lag, rpc=rpc)


def _runs(session: Session, outcome: str) -> dict[str, RunInfo]:
    runs = queries.last_job_runs(session, outcome=outcome)
    return {
        f"{job}:{chain}" if chain else job: RunInfo(
            at=r.finished_at or r.started_at,
            outcome=r.outcome,
            detail=r.error or _short(r.summary),
        )
        for (job, chain), r in sorted(runs.items())
    }


def _short(summary: str | None) -> str | None:
    if summary is None:
        return None
    data: Any = json.loads(summary)
    return ", ".join(f"{k}={v}" for k, v in data.items() if k not in ("job", "chain"))[
        :200
    ]


def chains_in_use(session: Session, names: list[str]) -> list[str]:
    """Chains with a scan cursor or any payment; only these are probed by default."""
    return [
        n
        for n in names
        if queries.get_cursor(session, n)
        or queries.count_payments_by_status(session, n)
    ]


def run(
    session: Session,
    clients: Mapping[str, ChainClient | None],
    *,
    chains: Mapping[str, ChainConfig],
    now: datetime,
) -> StatusResult:
    """Collect the status of every chain in `chains`; a chain whose RPC is down is shown as down."""
    statuses = {
        name: _chain_status(session, cfg, clients.get(name))
        for name, cfg in chains.items()
    }
    problems = [
        f"chain {n}: RPC {s.rpc}"
        for n, s in statuses.items()
        if s.rpc.startswith("down")
    ]
    return StatusResult(
        chains=statuses,
        payments=queries.count_payments_by_status(session),
        webhooks=queries.count_events_by_status(session),
        last_success=_runs(session, "ok"),
        last_failure=_runs(session, "error"),
        healthy=not problems,
        problems=problems,
    )
