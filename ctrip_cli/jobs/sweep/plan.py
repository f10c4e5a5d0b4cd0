"""Plan new sweeps: what each payment still owes the treasury (its deep money less what
sweeps took or hold), one sweep per (address, asset), and the drafts signed in the
pass's one signing commit.

A payment may have several sweeps: money that arrives after its first is swept again,
each part exactly once (a sweep's links say how much of each payment it takes).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ctrip_cli.chain import tx
from ctrip_cli.chain.client import Fees
from ctrip_cli.chain.signer import DEPOSIT_PATH
from ctrip_cli.db import queries
from ctrip_cli.db.models import Payment, SweepTransaction
from ctrip_cli.domain.statuses import SweepKind
from ctrip_cli.errors import ConfigError, RpcRejectedError
from ctrip_cli.jobs.sweep import send
from ctrip_cli.jobs.sweep.context import Pass, PlanItem
from ctrip_cli.jobs.sweep.fees import (
    TOKEN_GAS_MARGIN_BPS,
    Reserve,
    estimated_gas,
    fee_reserve_wei,
    market_fees,
    native_dust_bound_wei,
    native_fees,
    native_gas,
)
from ctrip_cli.money import format_units

__all__ = ["TOKEN_GAS_MARGIN_BPS", "Group", "owed_groups", "plan_all"]


@dataclass(frozen=True, slots=True)
class Share:
    """The part of one payment's money a sweep takes (for the native coin, the fee
    is paid from it)."""

    payment: Payment
    amount: int


@dataclass(frozen=True, slots=True)
class Group:
    """The shares one sweep of an (address, asset) takes and, for the native coin, the
    address's overdraft: what confirmed sweeps of it paid in fees beyond what they
    reserved (an L1 data fee that rose before inclusion), out of money that arrived
    later. The address holds that much less than its payments are owed, so the sweep
    sends that much less; its dust records the difference, which clears the
    overdraft."""

    shares: list[Share]
    overdraft: int = 0

    @property
    def first(self) -> Payment:
        return self.shares[0].payment


@dataclass(frozen=True, slots=True)
class _Draft:
    """A sweep decided from chain reads, signed later in the pass's one signing commit."""

    kind: SweepKind
    shares: list[Share]
    token: str | None
    amount: int
    gas_limit: int
    fees: Fees
    l1_wei: int = 0  # the L1 data fee bound the sender holds for it
    topup_wei: int = 0

    @property
    def first(self) -> Payment:
        return self.shares[0].payment


def plan_all(ctx: Pass) -> None:
    drafts = [d for d in (_plan_group(ctx, g) for g in owed_groups(ctx)) if d]
    ctx.tally.counts["planned"] += len(drafts)
    if ctx.dry_run or not drafts:
        return
    # Chain reads first, so the write transaction below holds no lock across an RPC call.
    for d in drafts:
        send.node_nonce(ctx, d.first.address)
    if any(d.topup_wei for d in drafts):
        send.node_nonce(ctx, ctx.payer)
    to_send = [_sign_draft(ctx, d) for d in drafts]
    ctx.commit()  # every new transaction is stored before the first one is sent
    ctx.hook("after_sign")
    for row in to_send:  # pipelined by nonce: no receipt waits
        send.broadcast(ctx, row, commit=False)
    ctx.commit()


def owed_groups(ctx: Pass) -> list[Group]:
    """What payments still owe the treasury, one group per (address, asset); native
    groups first, as they need no gas payer and so go out even when it is empty.

    Only money in blocks a reorg can no longer take back is owed (a sweep of funds a
    reorg removes would revert), and an address with a sweep in flight waits for it.
    """
    candidates = queries.sweep_candidates(ctx.session, ctx.chain)
    ids = [p.id for p in candidates]
    deep = queries.deep_sums(ctx.session, ids, deepest_block=ctx.deepest_block)
    held = queries.reserved_amounts(ctx.session, ids)
    busy = queries.busy_addresses(ctx.session, ctx.chain)
    # Only an address an earlier sweep took money of can have been overdrawn by it.
    swept = {p.address for p in candidates if not p.token_address and p.amount_swept}
    dust = queries.native_dust_sums(ctx.session, ctx.chain, swept)
    ctx.commit()  # nothing written: ends the read
    groups: dict[tuple[str, str | None], list[Share]] = defaultdict(list)
    for p in candidates:
        key = (p.address, p.token_address)
        taken = p.amount_swept + held.get(p.id, 0)
        owed = deep[p.id] - taken
        if key in busy or owed <= 0 or _late_dust(ctx, p, owed, taken):
            continue
        groups[key].append(Share(p, owed))
    return [
        Group(shares, 0 if token else max(-dust.get(address, 0), 0))
        for (address, token), shares in sorted(
            groups.items(), key=lambda kv: kv[0][1] or ""
        )
    ]


def _late_dust(ctx: Pass, p: Payment, owed: int, taken: int) -> bool:
    """Money that arrived after a payment's sweep, below `min_late_sweep_bps` of its
    amount: not worth a transaction (nor a gas top-up). It stays on the address,
    reported, until more arrives."""
    if taken == 0 or owed * 10_000 >= p.amount * ctx.settings.min_late_sweep_bps:
        return False
    ctx.tally.counts["skipped_dust"] += 1
    _add_plan(
        ctx,
        SweepKind.TOKEN if p.token_address else SweepKind.NATIVE,
        p,
        ctx.treasury,
        owed,
        Reserve(0),
        [p],
        "skip: late money below min_late_sweep_bps",
    )
    return True


def _plan_group(ctx: Pass, group: Group) -> _Draft | None:
    first = group.first
    _check_keys(ctx, first)
    if first.token_address is None:
        return _plan_native(ctx, group)
    try:
        return _plan_token(ctx, group.shares, first.token_address)
    except RpcRejectedError as exc:
        # A token that refuses balanceOf/transfer for this address (paused,
        # blacklisted) costs this sweep only, not every sweep of the chain.
        ctx.tally.errors.append(f"{first.address}: {first.asset}: {exc}")
        return None


def _check_keys(ctx: Pass, payment: Payment) -> None:
    path = DEPOSIT_PATH.format(index=payment.derivation_index)
    if ctx.keys.address(path) != payment.address:
        raise ConfigError(
            f"CTRIP_MNEMONIC does not derive deposit address {payment.address} "
            f"(index {payment.derivation_index}); use the mnemonic the payments were "
            "created with"
        )


def _plan_native(ctx: Pass, group: Group) -> _Draft | None:
    shares, first = group.shares, group.first
    owed = _sweepable(
        ctx, shares, ctx.rpc.balance(first.address), short=group.overdraft
    )
    if owed is None:
        return None
    total = owed - group.overdraft
    if group.overdraft:
        native = ctx.cfg.native
        ctx.tally.errors.append(
            f"{first.address}: an earlier sweep's fees exceeded its reserve by "
            f"{format_units(group.overdraft, native.decimals)} {native.symbol} (an L1 "
            "data fee that rose before inclusion), paid from money that arrived later; "
            "this sweep sends that much less"
        )
    gas_limit = native_gas(ctx, first.address)
    prices = native_fees(ctx)
    reserve = fee_reserve_wei(ctx, gas_limit, prices, to=ctx.treasury, value=total)
    fee = reserve.total_wei
    value = total - fee
    uneconomic = value <= 0 or fee * 10_000 > ctx.settings.max_fee_share_bps * total
    action = "skip: fee exceeds max_fee_share_bps" if uneconomic else "sweep"
    payments = [s.payment for s in shares]
    dust = native_dust_bound_wei(ctx, gas_limit, prices, reserve)
    _add_plan(
        ctx,
        SweepKind.NATIVE,
        first,
        ctx.treasury,
        max(value, 0),
        reserve,
        payments,
        action,
        dust_bound_wei=dust,
    )
    if uneconomic:
        ctx.tally.counts["skipped_uneconomic"] += 1
        return None
    return _Draft(
        SweepKind.NATIVE, shares, None, value, gas_limit, prices, reserve.l1_wei
    )


def _plan_token(ctx: Pass, shares: list[Share], token: str) -> _Draft | None:
    first = shares[0].payment
    amount = _sweepable(ctx, shares, ctx.rpc.token_balance(token, first.address))
    if amount is None:
        return None
    data = tx.transfer_data(ctx.treasury, amount)
    estimate = ctx.rpc.estimate_gas(sender=first.address, to=token, data=data)
    gas_limit = estimated_gas(ctx, estimate, margin_bps=TOKEN_GAS_MARGIN_BPS)
    prices = market_fees(ctx, eip1559=ctx.cfg.eip1559)
    reserve = fee_reserve_wei(ctx, gas_limit, prices, to=token, data=data)
    need = max(reserve.total_wei - ctx.rpc.balance(first.address), 0)
    payments = [s.payment for s in shares]
    # No price oracle: a token sweep is never skipped as uneconomic; its gas is reported.
    action = "top up gas, then sweep" if need else "sweep"
    _add_plan(
        ctx, SweepKind.TOKEN, first, ctx.treasury, amount, reserve, payments, action
    )
    if need:
        _add_plan(
            ctx,
            SweepKind.TOPUP,
            first,
            first.address,
            need,
            send.topup_reserve(ctx, first.address, need),
            payments,
            "top up",
            sender=ctx.payer,
        )
        if not send.reserve_topup(ctx, first.address, need) and not ctx.dry_run:
            return None
    return _Draft(
        SweepKind.TOKEN,
        shares,
        token,
        amount,
        gas_limit,
        prices,
        reserve.l1_wei,
        need,
    )


def _sweepable(
    ctx: Pass, shares: list[Share], balance: int, *, short: int = 0
) -> int | None:
    """What the payments still owe, if the address holds it (less `short`, what
    earlier sweeps overdrew of it); else None (reported).

    Never more: stray funds belong to no payment. Never less, which would strand the
    rest: a balance short of it means an endpoint that lags or funds moved by someone
    else, so the sweep waits.
    """
    owed = sum(s.amount for s in shares)
    if balance >= owed - short:
        return owed
    first = shares[0].payment
    ctx.tally.errors.append(
        f"{first.address}: holds {format_units(balance, first.decimals)} {first.asset}, "
        "less than its payments are owed "
        f"({format_units(owed - short, first.decimals)}); "
        "waiting (a lagging RPC endpoint, or funds moved outside ctrip)"
    )
    return None


def _sign_draft(ctx: Pass, d: _Draft) -> SweepTransaction:
    """Sign a draft (and its top-up) and link its shares; returns the row to send.

    A purpose names the deposit address, the asset and the sweep's nonce: unique
    per sweep, so each later sweep of the same payment is a purpose of its own.
    """
    first = d.first
    nonce = send.next_nonce(ctx, first.address)
    key = f"{first.address}:{first.asset}:{nonce}"
    topup = None
    if d.topup_wei:
        topup = send.sign_topup(ctx, first.address, d.topup_wei, f"gas:{key}")
    row = send.sign_row(
        ctx,
        purpose=f"sweep:{key}",
        kind=d.kind,
        key_path=DEPOSIT_PATH.format(index=first.derivation_index),
        to=ctx.treasury,
        token=d.token,
        amount=d.amount,
        nonce=nonce,
        gas_limit=d.gas_limit,
        fees=d.fees,
        l1_fee_wei=d.l1_wei,
        depends_on=topup,
    )
    queries.link_sweep_payments(
        ctx.session, row.id, [(s.payment.id, s.amount) for s in d.shares]
    )
    return topup or row


def _add_plan(
    ctx: Pass,
    kind: SweepKind,
    p: Payment,
    to: str,
    amount: int,
    fee: Reserve,
    payments: list[Payment],
    action: str,
    *,
    sender: str | None = None,
    dust_bound_wei: int = 0,
) -> None:
    native = ctx.cfg.native
    asset, decimals = (
        (native.symbol, native.decimals)
        if kind == SweepKind.TOPUP
        else (p.asset, p.decimals)
    )
    ctx.tally.plan.append(
        PlanItem(
            kind=str(kind),
            asset=asset,
            from_address=sender or p.address,
            to_address=to,
            amount=format_units(amount, decimals),
            amount_base_units=str(amount),
            fee=_fee_text(fee, native.symbol, native.decimals),
            fee_wei=str(fee.total_wei),
            payments=[x.id for x in payments],
            action=action,
            l1_fee_wei=str(fee.l1_wei),
            dust_bound_wei=str(dust_bound_wei),
        )
    )


def _fee_text(fee: Reserve, symbol: str, decimals: int) -> str:
    text = f"{format_units(fee.total_wei, decimals)} {symbol}"
    if fee.l1_wei:
        text += f" (L1 data {format_units(fee.l1_wei, decimals)})"
    return text
