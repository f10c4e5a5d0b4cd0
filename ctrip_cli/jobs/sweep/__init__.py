"""`ctrip sweep`: move what payments owe the treasury from deposit addresses, exactly once.

A pass first advances the transactions it already signed (`advance`: receipts, depth,
settling, release of held token sweeps, rebroadcast, fee-bump replacement), then plans
new sweeps (`plan`) and signs and sends them (`send`). Every transaction is a row
committed before it is broadcast; a rerun rebroadcasts the stored bytes and never signs
a second transaction for the same purpose (only a same-nonce replacement). Fees, the
chain's fee model (L1 data fees, Arbitrum's gas) included, are computed in `fees`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from ctrip_cli.chain.client import ChainClient
from ctrip_cli.chain.signer import KeyRing
from ctrip_cli.config import ChainConfig, SweepSettings
from ctrip_cli.db import queries
from ctrip_cli.errors import ConfigError, InsufficientFundsError
from ctrip_cli.jobs.sweep.advance import advance_all
from ctrip_cli.jobs.sweep.context import Hook, Pass, PlanItem
from ctrip_cli.jobs.sweep.fees import TOKEN_GAS_MARGIN_BPS
from ctrip_cli.jobs.sweep.plan import plan_all

__all__ = [
    "TOKEN_GAS_MARGIN_BPS",
    "PlanItem",
    "SweepResult",
    "require_treasury",
    "run",
]


@dataclass(frozen=True, slots=True)
class SweepResult:
    job: str
    chain: str
    skipped: str | None
    dry_run: bool = False
    planned: int = 0
    signed: int = 0
    broadcast: int = 0
    confirmed: int = 0
    settled: int = 0
    replaced: int = 0
    rebroadcast: int = 0
    topups: int = 0
    failed: int = 0
    skipped_uneconomic: int = 0
    skipped_dust: int = 0
    in_flight: int = 0
    # Native coin the sweeps confirmed by this pass left on their deposit addresses
    # (decimal string of wei; 0 where the fee was exact).
    dust_wei: str = "0"
    plan: list[PlanItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def lock_held(cls, chain: str, reason: str) -> SweepResult:
        return cls(job="sweep", chain=chain, skipped=reason)


def run(
    session: Session,
    chain: ChainClient,
    *,
    cfg: ChainConfig,
    keys: KeyRing,
    now: datetime,
    settings: SweepSettings,
    dry_run: bool = False,
    hook: Hook | None = None,
    tolerance_bps: int = 0,
) -> SweepResult:
    """One sweep pass over `cfg`'s chain; with `dry_run`, plan only and write nothing.

    `chain` is the chain's ChainClient (`EvmChain`, or `testing.FakeChain`).
    `hook(step)` is called after each commit of signed rows ("after_sign") and after
    each broadcast ("after_broadcast"); tests use it to inject crashes. A payment is
    settled once confirmed sweeps took its amount less `tolerance_bps` (the scan's
    underpayment tolerance) to the treasury.

    Raises:
        ConfigError: no treasury, or the mnemonic does not derive the deposit addresses.
        ChainIdMismatchError: the endpoint serves another chain.
        InsufficientFundsError: the gas payer cannot fund the token sweeps that need
            gas (everything else of the pass is done and committed; rerun once funded).
        RpcUnavailableError: the chain cannot be reached (signed rows stay; rerun).
    """
    ctx = Pass(
        session=session,
        rpc=chain,
        cfg=cfg,
        keys=keys,
        settings=settings,
        now=now,
        treasury=require_treasury(cfg),
        head=chain.checked_head(),
        hook=hook or (lambda _step: None),
        dry_run=dry_run,
        tolerance_bps=tolerance_bps,
    )
    if not dry_run:
        advance_all(ctx)
    plan_all(ctx)
    session.rollback()  # end any read transaction (a dry run has written nothing)
    if ctx.tally.blocked and not dry_run:
        raise InsufficientFundsError("; ".join(ctx.tally.blocked))
    ctx.tally.errors.extend(ctx.tally.blocked)
    return _result(ctx)


def require_treasury(cfg: ChainConfig) -> str:
    """The chain's treasury address.

    Raises:
        ConfigError: chains.<name>.treasury is not set.
    """
    if cfg.treasury is None:
        raise ConfigError(
            f"chains.{cfg.name}.treasury: not set; set it to an address you control "
            "before sweeping this chain"
        )
    return cfg.treasury


def _result(ctx: Pass) -> SweepResult:
    c = ctx.tally.counts
    in_flight = sum(
        n
        for state, n in queries.count_sweep_txs_by_state(ctx.session, ctx.chain).items()
        if state in queries.SWEEP_LIVE_STATES
    )
    ctx.session.rollback()
    return SweepResult(
        job="sweep",
        chain=ctx.chain,
        skipped=None,
        dry_run=ctx.dry_run,
        planned=c["planned"],
        signed=c["signed"],
        broadcast=c["broadcast"],
        confirmed=c["confirmed"],
        settled=c["settled"],
        replaced=c["replaced"],
        rebroadcast=c["rebroadcast"],
        topups=c["topups"],
        failed=c["failed"],
        skipped_uneconomic=c["skipped_uneconomic"],
        skipped_dust=c["skipped_dust"],
        in_flight=in_flight,
        dust_wei=str(ctx.tally.dust_wei),
        plan=ctx.tally.plan,
        errors=ctx.tally.errors,
    )
