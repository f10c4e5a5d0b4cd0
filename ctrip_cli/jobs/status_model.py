"""The snapshot `status` reports: frozen values shared by `status` and `status_health`.

Kept apart so that `jobs.status` (which collects it) and `jobs.status_health` (which
judges it) both import it and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ctrip_cli.chain.client import EndpointProbe

# One probed RPC endpoint; its label never carries credentials or path tokens.
Endpoint = EndpointProbe


@dataclass(frozen=True, slots=True)
class GasPayer:
    """The account that sends gas to deposit addresses before their token sweeps."""

    address: str
    balance_wei: int | None
    symbol: str = "ETH"
    decimals: int = 18
    gas_price_wei: int | None = None
    # The L1 data fee of one token sweep (its top-up and its transfer) at current L1
    # prices: OP Stack's L1 fee bound, or the L1 part of Arbitrum's gas.
    l1_fee_wei: int | None = None
    needed_wei: int | None = None  # rough upper bound for the token sweeps awaiting
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SweepStatus:
    awaiting: int  # confirmed payments not yet settled
    awaiting_tokens: int  # ... of which token payments (they need gas from the payer)
    awaiting_since: datetime | None  # confirmed-at of the oldest one
    in_flight: int  # transactions signed or sent but not final
    stuck: int  # purposes in flight for longer than sweep_stuck_s
    oldest_stuck_since: datetime | None
    by_state: dict[str, int]
    # Money on deposit addresses that no sweep takes, each with its reason:
    held_for_refund: int = 0  # expired payments holding late money short of the amount
    unswept_settled: int = 0  # settled payments with later money (dust, or next sweep)


@dataclass(frozen=True, slots=True)
class OpenDifference:
    """A balance reconcile could not explain and an operator must look at."""

    address: str
    asset: str
    kind: str
    amount_base_units: str
    since: datetime  # found first
    last_seen_block: int
    note: str | None


@dataclass(frozen=True, slots=True)
class ReconcileStatus:
    """The last reconcile of a chain and the differences still open."""

    block: int | None  # compared at; None before the first
    at: datetime | None
    age_s: float | None
    open: dict[str, int]  # open differences by kind (inflow, shortfall)
    # Base units of the open differences by "asset:kind", e.g. {"USDC:shortfall": 5}.
    open_base_units: dict[str, int]
    differences: list[OpenDifference] = field(default_factory=list)  # the first 50


@dataclass(frozen=True, slots=True)
class ChainStatus:
    in_use: bool
    head: int | None
    cursor: int | None
    lag_blocks: int | None
    lag_s: float | None
    max_lag_blocks: int
    head_age_s: float | None
    rpc: str  # up | degraded | down | not checked (unused chains are not probed)
    endpoints: list[Endpoint]
    payments: dict[str, int]
    sweeps: SweepStatus
    gas_payer: GasPayer | None = None
    reconcile: ReconcileStatus | None = None


@dataclass(frozen=True, slots=True)
class Outbox:
    due: int  # pending and due now
    retrying: int  # pending after a failed attempt
    failed: int  # gave up after the last attempt; `webhooks retry` redelivers
    skipped: int  # no webhook URL configured for the payment
    oldest_due_at: datetime | None
    oldest_due_age_s: float | None


@dataclass(frozen=True, slots=True)
class PassStatus:
    job: str
    chain: str
    last_run_at: datetime
    last_outcome: str
    last_duration_s: float | None
    last_success: datetime | None
    last_failure: datetime | None
    last_error: str | None
    last_summary: dict[str, Any] | None  # what the last successful pass reported
    recent_runs: dict[str, int]  # by outcome, over the last hour (RECENT)
    recent_duration_avg_s: float | None
    recent_duration_max_s: float | None


@dataclass(frozen=True, slots=True)
class StatusResult:
    chains: dict[str, ChainStatus]
    payments: dict[str, int]
    webhooks: dict[str, int]
    payments_oldest: dict[str, datetime | None]
    outbox: Outbox
    passes: dict[str, PassStatus]
    checked_at: datetime
    healthy: bool = True
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def pass_key(job: str, chain: str) -> str:
    """`scan:bsc` for a per-chain pass, `deliver-webhooks` for a global one."""
    return f"{job}:{chain}" if chain else job
