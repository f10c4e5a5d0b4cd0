"""`ctrip sweep`: move confirmed funds from deposit addresses to the treasury, exactly once.

A pass first advances the transactions it already signed (receipts, depth, release of
held token sweeps, rebroadcast of dropped ones, fee-bump replacement of stuck ones,
settling payments), then plans new sweeps. Every transaction is a row committed before
it is broadcast; a rerun rebroadcasts the stored bytes and never signs a second
transaction for the same purpose (only a same-nonce replacement).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ctrip_cli import lifecycle
from ctrip_cli.chain import tx
from ctrip_cli.chain.client import ChainClient, Fees, Receipt, SendOutcome
from ctrip_cli.chain.signer import DEPOSIT_PATH, KeyRing
from ctrip_cli.config import ChainConfig, SweepSettings
from ctrip_cli.db import queries
from ctrip_cli.db.models import Payment, SweepTransaction
from ctrip_cli.errors import (
    ConfigError,
    InsufficientFundsError,
    RpcRejectedError,
)
from ctrip_cli.money import format_units

HELD, SIGNED, PENDING, MINED = "held", "signed", "pending", "mined"
CONFIRMED, FAILED, REPLACED = "confirmed", "failed", "replaced"
NATIVE, TOKEN, TOPUP = "native", "token", "topup"
TOKEN_GAS_MARGIN_BPS = 1_000  # +10% over eth_estimateGas; the unused part is refunded

Hook = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One planned transaction, as `--dry-run` and `--json` show it."""

    kind: str
    asset: str
    from_address: str
    to_address: str
    amount: str
    amount_base_units: str
    fee: str  # in the native coin (for a token sweep: its gas at the max fee)
    fee_wei: str
    payments: list[str]
    action: str


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
    in_flight: int = 0
    plan: list[PlanItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def lock_held(cls, chain: str, reason: str) -> SweepResult:
        return cls(job="sweep", chain=chain, skipped=reason)


@dataclass
class _Pass:
    """The state of one pass; only `run` builds it."""

    session: Session
    rpc: ChainClient
    cfg: ChainConfig
    keys: KeyRing
    settings: SweepSettings
    now: datetime
    treasury: str
    head: int
    hook: Hook
    dry_run: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    plan: list[PlanItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    nonces: dict[str, int] = field(default_factory=dict)
    payer_spent_wei: int = 0
    # Read once per pass: fees, the native transfer's gas, the gas payer's balance.
    cache: dict[str, Any] = field(default_factory=dict)
    receipts: dict[str, Receipt | None] = field(default_factory=dict)
    payer_balance_wei: int | None = None

    @property
    def chain(self) -> str:
        return self.cfg.name


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
) -> SweepResult:
    """One sweep pass over `cfg`'s chain; with `dry_run`, plan only and write nothing.

    `chain` is the chain's ChainClient (`EvmChain`, or `testing.FakeChain`).
    `hook(step)` is called after each commit of signed rows ("after_sign") and after
    each broadcast ("after_broadcast"); tests use it to inject crashes.

    Raises:
        ConfigError: no treasury, or the mnemonic does not derive the deposit addresses.
        ChainIdMismatchError: the endpoint serves another chain.
        InsufficientFundsError: the gas payer cannot fund the token sweeps that need
            gas (everything else of the pass is done and committed; rerun once funded).
        RpcUnavailableError: the chain cannot be reached (signed rows stay; rerun).
    """
    treasury = require_treasury(cfg)
    ctx = _Pass(
        session=session,
        rpc=chain,
        cfg=cfg,
        keys=keys,
        settings=settings,
        now=now,
        treasury=treasury,
        head=chain.checked_head(),
        hook=hook or (lambda _step: None),
        dry_run=dry_run,
    )
    if not dry_run:
        _advance_all(ctx)
    _plan_all(ctx)
    session.rollback()  # end any read transaction (a dry run has written nothing)
    if ctx.blocked and not dry_run:
        raise InsufficientFundsError("; ".join(ctx.blocked))
    ctx.errors.extend(ctx.blocked)
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


def _result(ctx: _Pass) -> SweepResult:
    c = ctx.counts
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
        in_flight=in_flight,
        plan=ctx.plan,
        errors=ctx.errors,
    )


# --- advancing what was already signed -------------------------------------------------


def _advance_all(ctx: _Pass) -> None:
    groups: dict[str, list[SweepTransaction]] = defaultdict(list)
    for row in queries.live_sweep_attempts(ctx.session, ctx.chain):
        groups[row.purpose].append(row)
    _commit(ctx)
    sent = [a.tx_hash for rows in groups.values() for a in rows if a.broadcast_at]
    ctx.receipts = ctx.rpc.receipts(sent)  # one batched round trip, not one per tx
    # Oldest purpose first: a gas top-up is advanced before the token sweep it funds.
    ordered = sorted(groups.values(), key=lambda a: a[0].id)
    # Everything mined is recorded (and its payments settled) in one commit; this part
    # makes no RPC call, so no database lock is held across the network.
    unmined = [attempts for attempts in ordered if not _record_receipts(ctx, attempts)]
    _commit(ctx)
    for attempts in unmined:
        _advance_unmined(ctx, attempts)


def _record_receipts(ctx: _Pass, attempts: list[SweepTransaction]) -> bool:
    """Record a mined attempt of the group; False when none is mined."""
    mined = _find_mined(ctx, attempts)
    if mined is not None:
        _record_mined(ctx, attempts, *mined)
        return True
    for a in attempts:
        if a.state == MINED:  # its receipt vanished: a reorg put it back in the mempool
            a.state, a.block_number, a.updated_at = PENDING, None, ctx.now
    return False


def _advance_unmined(ctx: _Pass, attempts: list[SweepTransaction]) -> None:
    latest = attempts[-1]
    if latest.state == HELD:
        _release(ctx, latest)
    elif latest.state == SIGNED:
        _broadcast(ctx, latest)
    else:
        _check_pending(ctx, attempts, latest)


def _find_mined(
    ctx: _Pass, attempts: list[SweepTransaction], *, fresh: bool = False
) -> tuple[SweepTransaction, Receipt] | None:
    for a in attempts:
        if a.broadcast_at is None:
            continue
        if not fresh and a.tx_hash in ctx.receipts:
            rc = ctx.receipts[a.tx_hash]
        else:
            rc = ctx.rpc.receipts([a.tx_hash])[a.tx_hash]
        if rc is not None:
            return a, rc
    return None


def _record_mined(
    ctx: _Pass, attempts: list[SweepTransaction], won: SweepTransaction, rc: Receipt
) -> None:
    won.block_number, won.fee_paid = rc.block_number, rc.fee_paid_wei
    error = _receipt_error(won, rc)
    if error is not None:
        _finish(ctx, attempts, won, FAILED, error)
        ctx.errors.append(f"{won.purpose}: {error}")
        ctx.counts["failed"] += 1
        return
    if ctx.head - rc.block_number + 1 >= max(ctx.cfg.confirmations, 1):
        _finish(ctx, attempts, won, CONFIRMED, None)
        ctx.counts["confirmed"] += 1
        return
    if won.state != MINED:
        won.state, won.updated_at = MINED, ctx.now


def _receipt_error(row: SweepTransaction, rc: Receipt) -> str | None:
    if rc.status != 1:
        return f"transaction {rc.tx_hash} reverted (receipt status 0)"
    if row.kind == TOKEN and row.token_address is not None:
        moved = tx.has_transfer_log(
            rc,
            token=row.token_address,
            sender=row.from_address,
            to=row.to_address,
            amount=row.amount,
        )
        if not moved:
            return (
                f"transaction {rc.tx_hash} succeeded without the expected Transfer log"
            )
    return None


def _finish(
    ctx: _Pass,
    attempts: list[SweepTransaction],
    won: SweepTransaction,
    state: str,
    error: str | None,
) -> None:
    """Record the group's outcome and, for a confirmed sweep, settle its payments, in
    the caller's transaction, so they commit together."""
    for a in attempts:
        if a is not won:
            a.state, a.updated_at = REPLACED, ctx.now
    won.state, won.last_error, won.updated_at = state, error, ctx.now
    if state == CONFIRMED and won.kind != TOPUP:
        for payment in queries.swept_payments(ctx.session, attempts[0].id):
            if payment.status in (lifecycle.CONFIRMED, lifecycle.EXPIRED):
                settled = lifecycle.transition(
                    ctx.session,
                    payment,
                    lifecycle.SETTLED,
                    now=ctx.now,
                    reason=f"swept to treasury in {won.tx_hash}",
                    event="payment.settled",
                )
                ctx.counts["settled"] += int(settled)


def _release(ctx: _Pass, held: SweepTransaction) -> None:
    """Broadcast a token sweep once its gas top-up is mined; fail it if the top-up failed."""
    dep = queries.get_sweep_tx(ctx.session, held.depends_on_id or 0)
    states = (
        queries.sweep_purpose_states(ctx.session, ctx.chain, dep.purpose)
        if dep
        else set()
    )
    _commit(ctx)
    if states & {MINED, CONFIRMED}:
        _broadcast(ctx, held)
    elif FAILED in states:
        held.state, held.last_error, held.updated_at = (
            FAILED,
            "its gas top-up failed",
            ctx.now,
        )
        _commit(ctx)
        ctx.counts["failed"] += 1


def _check_pending(
    ctx: _Pass, attempts: list[SweepTransaction], latest: SweepTransaction
) -> None:
    sent_at = latest.broadcast_at or latest.created_at
    stuck = (ctx.now - sent_at).total_seconds() >= ctx.settings.stuck_after_s
    if ctx.rpc.is_known(latest.tx_hash):
        if stuck:
            _replace(ctx, attempts, latest)
        return
    if ctx.rpc.nonce(latest.from_address, "latest") > latest.nonce:
        _nonce_taken(ctx, attempts, latest)
    elif stuck:
        _replace(ctx, attempts, latest)
    else:  # dropped from the mempool with its nonce still free: send it again
        ctx.counts["rebroadcast"] += 1
        _broadcast(ctx, latest, first=False)


_NONCE_WAIT = "nonce used, no receipt visible yet"


def _nonce_taken(
    ctx: _Pass, attempts: list[SweepTransaction], latest: SweepTransaction
) -> None:
    """The nonce is used, yet no attempt of ours has a receipt.

    Usually an endpoint whose receipts lag its nonces (load-balanced RPC): wait. Only
    when that lasts `stuck_after_s` (counted from the first pass that saw it, not from
    the broadcast: a transaction may sit in the mempool for a while before it is
    mined) is it a transaction ctrip did not sign, and the sweep fails (its funds may
    be gone; an operator must look). A failed sweep is final, so this must not be a
    receipt that is merely late.
    """
    if _find_mined(ctx, attempts, fresh=True) is not None:
        return  # mined after all: the next pass records it
    if latest.last_error != _NONCE_WAIT:
        latest.last_error, latest.updated_at = _NONCE_WAIT, ctx.now
        _commit(ctx)
    waited = (ctx.now - latest.updated_at).total_seconds()
    if waited < ctx.settings.stuck_after_s:
        ctx.errors.append(
            f"{latest.purpose}: nonce {latest.nonce} is used but no receipt is visible "
            "yet; waiting"
        )
        return
    error = f"nonce {latest.nonce} was used by a transaction ctrip did not sign"
    _finish(ctx, attempts, latest, FAILED, error)
    _commit(ctx)
    ctx.errors.append(f"{latest.purpose}: {error}")
    ctx.counts["failed"] += 1


def _replace(
    ctx: _Pass, attempts: list[SweepTransaction], latest: SweepTransaction
) -> None:
    """Sign a same-nonce replacement with bumped fees (the old attempt may still win)."""
    old = Fees(latest.max_fee_per_gas, latest.max_priority_fee_per_gas)
    floor = _native_fees(ctx) if old.legacy else _fees(ctx, eip1559=True)
    new = old.bumped(ctx.settings.fee_bump_bps, floor)
    amount = latest.amount
    if latest.kind == NATIVE:  # the fee comes out of the swept value
        amount = (
            latest.amount
            + old.cost_wei(latest.gas_limit)
            - new.cost_wei(latest.gas_limit)
        )
        if amount <= 0:
            ctx.errors.append(
                f"{latest.purpose}: a fee bump would exceed the swept value"
            )
            return
    depends_on: SweepTransaction | None = None
    if latest.kind == TOKEN:
        need = new.cost_wei(latest.gas_limit) - ctx.rpc.balance(latest.from_address)
        if need > 0:
            if not _reserve_topup(ctx, need):
                return
            purpose = f"{latest.purpose}:bump{latest.id}"
            depends_on = _sign_topup(ctx, latest.from_address, need, purpose)
    row = _sign_row(
        ctx,
        purpose=latest.purpose,
        kind=latest.kind,
        key_path=latest.key_path,
        to=latest.to_address,
        token=latest.token_address,
        amount=amount,
        nonce=latest.nonce,
        gas_limit=latest.gas_limit,
        fees=new,
        replaces=latest,
        depends_on=depends_on,
    )
    _commit(ctx)
    ctx.counts["replaced"] += 1
    ctx.hook("after_sign")
    if depends_on is not None:
        _broadcast(ctx, depends_on)
    else:
        _broadcast(ctx, row)


# --- planning new sweeps ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Draft:
    """A sweep decided from chain reads, signed later in the pass's one signing commit."""

    kind: str
    payments: list[Payment]
    token: str | None
    amount: int
    gas_limit: int
    fees: Fees
    topup_wei: int = 0


def _plan_all(ctx: _Pass) -> None:
    drafts = [d for d in (_plan_group(ctx, g) for g in _groups(ctx)) if d]
    ctx.counts["planned"] += len(drafts)
    if ctx.dry_run or not drafts:
        return
    # Chain reads first, so the write transaction below holds no lock across an RPC call.
    for d in drafts:
        _node_nonce(ctx, d.payments[0].address)
    if any(d.topup_wei for d in drafts):
        _node_nonce(ctx, ctx.keys.address(ctx.settings.gas_payer_path))
    to_send = [_sign_draft(ctx, d) for d in drafts]
    _commit(ctx)  # every new transaction is stored before the first one is sent
    ctx.hook("after_sign")
    for row in to_send:  # pipelined by nonce: no receipt waits
        _broadcast(ctx, row, commit=False)
    _commit(ctx)


def _groups(ctx: _Pass) -> list[list[Payment]]:
    """Payments to sweep, one group per (address, asset); native groups first, as they
    need no gas payer and so go out even when it is empty."""
    candidates = queries.sweep_candidates(ctx.session, ctx.chain)
    last_blocks = queries.last_transfer_blocks(ctx.session, [p.id for p in candidates])
    _commit(ctx)  # nothing written: ends the read
    groups: dict[tuple[str, str | None], list[Payment]] = defaultdict(list)
    for p in candidates:
        # Every counted transfer must be deep, including ones credited after the
        # payment was confirmed: a sweep of funds a reorg can still remove would
        # revert or never mine, and a failed sweep is not retried.
        block = last_blocks.get(p.id)
        if not _late_funds_deep(ctx, block) and (
            p.status == lifecycle.EXPIRED or block is not None
        ):
            continue
        if p.amount_received > 0:
            groups[(p.address, p.token_address)].append(p)
    return [g for _key, g in sorted(groups.items(), key=lambda kv: kv[0][1] or "")]


def _plan_group(ctx: _Pass, payments: list[Payment]) -> _Draft | None:
    _check_keys(ctx, payments[0])
    token = payments[0].token_address
    if token is None:
        return _plan_native(ctx, payments)
    try:
        return _plan_token(ctx, payments, token)
    except RpcRejectedError as exc:
        # A token that refuses balanceOf/transfer for this address (paused,
        # blacklisted) costs this sweep only, not every sweep of the chain.
        ctx.errors.append(f"{payments[0].address}: {payments[0].asset}: {exc}")
        return None


def _late_funds_deep(ctx: _Pass, block: int | None) -> bool:
    return block is not None and ctx.head - block + 1 >= max(ctx.cfg.confirmations, 1)


def _check_keys(ctx: _Pass, payment: Payment) -> None:
    path = DEPOSIT_PATH.format(index=payment.derivation_index)
    if ctx.keys.address(path) != payment.address:
        raise ConfigError(
            f"CTRIP_MNEMONIC does not derive deposit address {payment.address} "
            f"(index {payment.derivation_index}); use the mnemonic the payments were "
            "created with"
        )


def _plan_native(ctx: _Pass, payments: list[Payment]) -> _Draft | None:
    first = payments[0]
    total = _sweepable(ctx, payments, ctx.rpc.balance(first.address))
    if total is None:
        return None
    gas_limit = _native_gas(ctx, first.address)
    fees = _native_fees(ctx)
    fee = fees.cost_wei(gas_limit)
    value = total - fee
    uneconomic = value <= 0 or fee * 10_000 > ctx.settings.max_fee_share_bps * total
    action = "skip: fee exceeds max_fee_share_bps" if uneconomic else "sweep"
    _add_plan(ctx, NATIVE, first, ctx.treasury, max(value, 0), fee, payments, action)
    if uneconomic:
        ctx.counts["skipped_uneconomic"] += 1
        return None
    return _Draft(NATIVE, payments, None, value, gas_limit, fees)


def _plan_token(ctx: _Pass, payments: list[Payment], token: str) -> _Draft | None:
    first = payments[0]
    amount = _sweepable(ctx, payments, ctx.rpc.token_balance(token, first.address))
    if amount is None:
        return None
    data = tx.transfer_data(ctx.treasury, amount)
    estimate = ctx.rpc.estimate_gas(sender=first.address, to=token, data=data)
    gas_limit = estimate + estimate * TOKEN_GAS_MARGIN_BPS // 10_000
    fees = _fees(ctx, eip1559=ctx.cfg.eip1559)
    gas_wei = fees.cost_wei(gas_limit)
    need = max(gas_wei - ctx.rpc.balance(first.address), 0)
    # No price oracle: a token sweep is never skipped as uneconomic; its gas is reported.
    action = "top up gas, then sweep" if need else "sweep"
    _add_plan(ctx, TOKEN, first, ctx.treasury, amount, gas_wei, payments, action)
    if need:
        payer = ctx.keys.address(ctx.settings.gas_payer_path)
        fee = _fees(ctx, eip1559=ctx.cfg.eip1559).cost_wei(tx.NATIVE_GAS)
        _add_plan(
            ctx,
            TOPUP,
            first,
            first.address,
            need,
            fee,
            payments,
            "top up",
            sender=payer,
        )
        if not _reserve_topup(ctx, need) and not ctx.dry_run:
            return None
    return _Draft(TOKEN, payments, token, amount, gas_limit, fees, need)


def _sweepable(ctx: _Pass, payments: list[Payment], balance: int) -> int | None:
    """What the payments received, if the address holds it; else None (reported).

    Never more: stray funds belong to no payment. Never less, which would strand the
    rest: a balance short of it means an endpoint that lags or funds moved by someone
    else, so the sweep waits.
    """
    received = sum(p.amount_received for p in payments)
    if balance >= received:
        return received
    first = payments[0]
    ctx.errors.append(
        f"{first.address}: holds {format_units(balance, first.decimals)} {first.asset}, "
        f"less than its payments received ({format_units(received, first.decimals)}); "
        "waiting (a lagging RPC endpoint, or funds moved outside ctrip)"
    )
    return None


def _sign_draft(ctx: _Pass, d: _Draft) -> SweepTransaction:
    """Sign a draft (and its top-up) and link its payments; returns the row to send."""
    first = d.payments[0]
    topup = None
    if d.topup_wei:
        topup = _sign_topup(
            ctx, first.address, d.topup_wei, _purpose("gas", d.payments)
        )
    row = _sign_row(
        ctx,
        purpose=_purpose("sweep", d.payments),
        kind=d.kind,
        key_path=DEPOSIT_PATH.format(index=first.derivation_index),
        to=ctx.treasury,
        token=d.token,
        amount=d.amount,
        nonce=_next_nonce(ctx, first.address),
        gas_limit=d.gas_limit,
        fees=d.fees,
        depends_on=topup,
    )
    queries.link_sweep_payments(ctx.session, row.id, [p.id for p in d.payments])
    return topup or row


def _reserve_topup(ctx: _Pass, value: int) -> bool:
    """Whether the gas payer can send `value` plus the top-up's fee; reserves it if so."""
    total = value + _fees(ctx, eip1559=ctx.cfg.eip1559).cost_wei(tx.NATIVE_GAS)
    if not _payer_can_fund(ctx, total):
        return False
    ctx.payer_spent_wei += total
    return True


def _sign_topup(ctx: _Pass, to: str, value: int, purpose: str) -> SweepTransaction:
    """Sign (not commit) exactly `value` wei from the gas payer to `to`."""
    payer = ctx.keys.address(ctx.settings.gas_payer_path)
    ctx.counts["topups"] += 1
    return _sign_row(
        ctx,
        purpose=purpose,
        kind=TOPUP,
        key_path=ctx.settings.gas_payer_path,
        to=to,
        token=None,
        amount=value,
        nonce=_next_nonce(ctx, payer),
        gas_limit=tx.NATIVE_GAS,
        fees=_fees(ctx, eip1559=ctx.cfg.eip1559),
    )


def _payer_can_fund(ctx: _Pass, wei: int) -> bool:
    payer = ctx.keys.address(ctx.settings.gas_payer_path)
    if ctx.payer_balance_wei is None:
        ctx.payer_balance_wei = ctx.rpc.balance(payer, "pending")
    available = ctx.payer_balance_wei - ctx.payer_spent_wei
    if available >= wei:
        return True
    native = ctx.cfg.native
    ctx.blocked.append(
        f"gas payer {payer} ({ctx.settings.gas_payer_path}) has "
        f"{format_units(max(available, 0), native.decimals)} {native.symbol} available, "
        f"needs {format_units(wei, native.decimals)} {native.symbol} to fund a token "
        "sweep's gas; send it more and rerun (the payments stay confirmed)"
    )
    return False


def _fees(ctx: _Pass, *, eip1559: bool) -> Fees:
    key = f"fees:{eip1559}"
    if key not in ctx.cache:
        ctx.cache[key] = ctx.rpc.fees(eip1559=eip1559)
    fees: Fees = ctx.cache[key]
    return fees


def _native_gas(ctx: _Pass, sender: str) -> int:
    """Gas of a plain transfer to the treasury (21,000 unless the treasury is a contract)."""
    if "native_gas" not in ctx.cache:
        ctx.cache["native_gas"] = ctx.rpc.estimate_gas(
            sender=sender, to=ctx.treasury, value=1
        )
    gas: int = ctx.cache["native_gas"]
    return gas


def _native_fees(ctx: _Pass) -> Fees:
    """Type-0 pricing for native sweeps: the fee is exactly gas × price, so no dust stays.

    An EIP-1559 transaction refunds (max fee − effective price) × gas to the sender, which
    would strand that refund on the deposit address. On EIP-1559 chains the price covers
    one block of base-fee growth (+12.5%) plus the tip.
    """
    if "native_fees" not in ctx.cache:
        ctx.cache["native_fees"] = _legacy_fees(ctx)
    fees: Fees = ctx.cache["native_fees"]
    return fees


def _legacy_fees(ctx: _Pass) -> Fees:
    price = ctx.rpc.gas_price()
    if not ctx.cfg.eip1559:
        return price
    current = _fees(ctx, eip1559=True)
    base = (current.max_fee_per_gas - (current.max_priority_fee_per_gas or 0)) // 2
    floor = -(-base * 9 // 8) + (current.max_priority_fee_per_gas or 0)
    return Fees(max(price.max_fee_per_gas, floor))


def _next_nonce(ctx: _Pass, address: str) -> int:
    """Our next nonce for `address`: the database's under the job lock, or the node's
    pending nonce when something else has used the account since."""
    if address not in ctx.nonces:
        node = _node_nonce(ctx, address)
        ours = queries.max_sweep_nonce(ctx.session, ctx.chain, address)
        ctx.nonces[address] = max(node, -1 if ours is None else ours + 1)
    n = ctx.nonces[address]
    ctx.nonces[address] = n + 1
    return n


def _node_nonce(ctx: _Pass, address: str) -> int:
    key = f"nonce:{address}"
    if key not in ctx.cache:
        ctx.cache[key] = ctx.rpc.nonce(address, "pending")
    nonce: int = ctx.cache[key]
    return nonce


def _purpose(what: str, payments: list[Payment]) -> str:
    ids = sorted(p.id for p in payments)
    p = payments[0]
    return f"{what}:{p.address}:{p.asset}:{ids[0]}:{len(ids)}"


def _add_plan(
    ctx: _Pass,
    kind: str,
    p: Payment,
    to: str,
    amount: int,
    fee_wei: int,
    payments: list[Payment],
    action: str,
    *,
    sender: str | None = None,
) -> None:
    native = ctx.cfg.native
    asset, decimals = (
        (native.symbol, native.decimals) if kind == TOPUP else (p.asset, p.decimals)
    )
    ctx.plan.append(
        PlanItem(
            kind=kind,
            asset=asset,
            from_address=sender or p.address,
            to_address=to,
            amount=format_units(amount, decimals),
            amount_base_units=str(amount),
            fee=f"{format_units(fee_wei, native.decimals)} {native.symbol}",
            fee_wei=str(fee_wei),
            payments=[x.id for x in payments],
            action=action,
        )
    )


# --- signing and broadcasting -----------------------------------------------------------


def _sign_row(
    ctx: _Pass,
    *,
    purpose: str,
    kind: str,
    key_path: str,
    to: str,
    token: str | None,
    amount: int,
    nonce: int,
    gas_limit: int,
    fees: Fees,
    replaces: SweepTransaction | None = None,
    depends_on: SweepTransaction | None = None,
) -> SweepTransaction:
    """Sign and add the row (flushed, not committed); the caller commits before sending."""
    account = ctx.keys.account(key_path)
    signed = tx.sign(
        account,
        chain_id=ctx.cfg.chain_id,
        nonce=nonce,
        to=token or to,
        value=0 if token else amount,
        data=tx.transfer_data(to, amount) if token else "0x",
        gas_limit=gas_limit,
        fees=fees,
    )
    ctx.counts["signed"] += 1
    return queries.add_sweep_tx(
        ctx.session,
        SweepTransaction(
            chain=ctx.chain,
            purpose=purpose,
            kind=kind,
            key_path=key_path,
            from_address=account.address,
            to_address=to,
            token_address=token,
            amount=amount,
            nonce=nonce,
            gas_limit=gas_limit,
            max_fee_per_gas=fees.max_fee_per_gas,
            max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
            raw_tx=signed.raw,
            tx_hash=signed.tx_hash,
            state=HELD if depends_on is not None else SIGNED,
            replaces_id=replaces.id if replaces else None,
            depends_on_id=depends_on.id if depends_on else None,
            created_at=ctx.now,
            updated_at=ctx.now,
        ),
    )


def _broadcast(
    ctx: _Pass, row: SweepTransaction, *, first: bool = True, commit: bool = True
) -> None:
    """Send the stored bytes; the outcome is recorded, a refusal is data, not an error."""
    try:
        outcome = ctx.rpc.send_raw(row.raw_tx)
    except RpcRejectedError as exc:
        row.last_error, row.updated_at = str(exc)[:500], ctx.now
        ctx.errors.append(f"{row.purpose}: {exc}")
        if commit:
            _commit(ctx)
        return
    if outcome is SendOutcome.NO_FUNDS:
        row.last_error = (
            f"node refused {row.tx_hash}: insufficient funds; retried next pass"
        )
        ctx.errors.append(f"{row.purpose}: {row.last_error}")
    else:
        row.state, row.last_error = PENDING, None
        row.broadcast_at = row.broadcast_at or ctx.now
        ctx.counts["broadcast"] += int(first)
    row.updated_at = ctx.now
    if commit:  # else the caller commits the batch; a lost update only means a resend
        _commit(ctx)
    ctx.hook("after_broadcast")


def _commit(ctx: _Pass) -> None:
    """Commit the work so far; also ends read transactions, since a rollback would
    expire the loaded rows and SQLite's BEGIN IMMEDIATE should not span an RPC call."""
    ctx.session.commit()
