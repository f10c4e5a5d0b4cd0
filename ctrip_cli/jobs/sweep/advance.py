"""Advance what a sweep pass already signed: record receipts (and what confirmed sweeps
took of their payments), settle payments whose asked amount reached the treasury,
release held token sweeps, rebroadcast dropped transactions, replace stuck ones."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from ctrip_cli.chain import tx
from ctrip_cli.chain.client import Fees, Receipt, SendOutcome
from ctrip_cli.db import queries
from ctrip_cli.db.models import SweepTransaction
from ctrip_cli.domain import lifecycle
from ctrip_cli.domain.statuses import EventType, PaymentStatus, SweepKind, SweepState
from ctrip_cli.jobs.sweep import fees, send
from ctrip_cli.jobs.sweep.context import Pass
from ctrip_cli.jobs.sweep.fees import fee_reserve_wei, market_fees, native_fees
from ctrip_cli.money import format_units

S = SweepState
_NONCE_WAIT = "nonce used, no receipt visible yet"


def advance_all(ctx: Pass) -> None:
    """Advance every purpose with a live attempt, then settle what was swept."""
    groups: dict[str, list[SweepTransaction]] = defaultdict(list)
    for row in queries.live_sweep_attempts(ctx.session, ctx.chain):
        groups[row.purpose].append(row)
    ctx.commit()
    sent = [a.tx_hash for rows in groups.values() for a in rows if a.broadcast_at]
    ctx.reads.receipts = ctx.rpc.receipts(sent)  # one batched round trip
    for rc in ctx.reads.receipts.values():  # the L1 fee parameters of their blocks
        if rc is not None and rc.l1_fee_wei is None:
            fees.l1_params_at(ctx, rc.block_number)
    # Oldest purpose first: a gas top-up is advanced before the token sweep it funds.
    ordered = sorted(groups.values(), key=lambda a: a[0].id)
    # Everything mined is recorded (and its payments settled) in one commit; this part
    # makes no RPC call, so no database lock is held across the network.
    unmined = [attempts for attempts in ordered if not _record_receipts(ctx, attempts)]
    settle(ctx)
    ctx.commit()
    for attempts in unmined:
        _advance_unmined(ctx, attempts)


def settle(ctx: Pass) -> None:
    """Settle confirmed payments whose asked amount (within the tolerance) confirmed
    sweeps took to the treasury, whenever both became true: a payment a reorg sent
    back to `detected` while its sweep confirmed is settled once re-confirmed."""
    swept = [
        p
        for p in queries.swept_unsettled(ctx.session, ctx.chain)
        if p.amount_swept >= lifecycle.threshold(p.amount, ctx.tolerance_bps)
    ]
    settled = lifecycle.move(
        ctx.session,
        swept,
        PaymentStatus.SETTLED,
        now=ctx.now,
        reason="swept to the treasury",
        event=EventType.SETTLED,
    )
    ctx.tally.counts["settled"] += len(settled)


def _record_receipts(ctx: Pass, attempts: list[SweepTransaction]) -> bool:
    """Record a mined attempt of the group; False when none is mined."""
    mined = _find_mined(ctx, attempts)
    if mined is not None:
        _record_mined(ctx, attempts, *mined)
        return True
    for a in attempts:
        if (
            a.state == S.MINED
        ):  # its receipt vanished: a reorg put it back in the mempool
            a.state, a.block_number, a.updated_at = S.PENDING, None, ctx.now
    return False


def _advance_unmined(ctx: Pass, attempts: list[SweepTransaction]) -> None:
    latest = attempts[-1]
    if latest.state == S.HELD:
        _release(ctx, attempts, latest)
    elif latest.state == S.SIGNED:
        _send_unsent(ctx, attempts, latest)
    else:
        _check_pending(ctx, attempts, latest)


def _send_unsent(
    ctx: Pass, attempts: list[SweepTransaction], latest: SweepTransaction
) -> None:
    """Send an attempt no node has accepted yet. One the node refuses for want of funds
    (an L1 data fee risen past its reserve; a top-up a lagging node has not seen) is
    stuck like an unmined one, counted from when it was signed: it is replaced with
    fresh fee parameters (a token sweep's with a fresh top-up)."""
    outcome = send.broadcast(ctx, latest)
    if outcome is SendOutcome.NO_FUNDS and _stuck(ctx, latest.created_at):
        _replace(ctx, attempts, latest)


def _stuck(ctx: Pass, since: datetime) -> bool:
    return (ctx.now - since).total_seconds() >= ctx.settings.stuck_after_s


def _find_mined(
    ctx: Pass, attempts: list[SweepTransaction], *, fresh: bool = False
) -> tuple[SweepTransaction, Receipt] | None:
    for a in attempts:
        if a.broadcast_at is None:
            continue
        if not fresh and a.tx_hash in ctx.reads.receipts:
            rc = ctx.reads.receipts[a.tx_hash]
        else:
            rc = ctx.rpc.receipts([a.tx_hash])[a.tx_hash]
        if rc is not None:
            return a, rc
    return None


def _record_mined(
    ctx: Pass, attempts: list[SweepTransaction], won: SweepTransaction, rc: Receipt
) -> None:
    l1_fee = rc.l1_fee_wei
    if l1_fee is None:
        l1_fee = fees.l1_fee_paid_wei(ctx, won.raw_tx, rc.block_number)
    won.block_number, won.l1_fee_paid = rc.block_number, l1_fee
    won.fee_paid = rc.fee_paid_wei + l1_fee
    error = _receipt_error(won, rc)
    if error is not None:
        _finish(ctx, attempts, won, S.FAILED, error)
        ctx.tally.errors.append(f"{won.purpose}: {error}")
        ctx.tally.counts["failed"] += 1
        return
    if rc.block_number <= ctx.deepest_block:
        if won.kind != SweepKind.TOPUP:
            won.dust = _dust(ctx, attempts[0], won)
            ctx.tally.dust_wei += max(won.dust, 0)
        _finish(ctx, attempts, won, S.CONFIRMED, None)
        ctx.tally.counts["confirmed"] += 1
        return
    if won.state != S.MINED:
        won.state, won.updated_at = S.MINED, ctx.now


def _dust(ctx: Pass, root: SweepTransaction, won: SweepTransaction) -> int:
    """What the deposit address keeps of what the sweep reserved.

    For a token sweep, of its gas reserve (never below 0: the gas payer's coin). For a
    native sweep, of what it took of its payments less what it sent: its fee reserve
    (and any overdraft of an earlier sweep it made up for) less the fees paid.
    Negative when the fees exceeded the reserve (an L1 data fee that rose before
    inclusion): the excess came out of later money on the address, and the next
    sweep of the address sends that much less (see `plan.Group`).
    """
    paid = won.fee_paid or 0
    if won.kind != SweepKind.NATIVE:
        reserved = won.gas_limit * won.max_fee_per_gas + won.l1_fee_reserved
        return max(reserved - paid, 0)
    took = sum(amount for _pid, amount in queries.sweep_links(ctx.session, root.id))
    dust = took - won.amount - paid
    if dust < 0:
        native = ctx.cfg.native
        ctx.tally.errors.append(
            f"{won.purpose}: its fees exceeded its reserve by "
            f"{format_units(-dust, native.decimals)} {native.symbol} (an L1 data fee "
            f"that rose before inclusion), paid from later money on {won.from_address}; "
            "the next sweep of it sends that much less"
        )
    return dust


def _receipt_error(row: SweepTransaction, rc: Receipt) -> str | None:
    if rc.status != 1:
        return f"transaction {rc.tx_hash} reverted (receipt status 0)"
    if row.kind == SweepKind.TOKEN and row.token_address is not None:
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
    ctx: Pass,
    attempts: list[SweepTransaction],
    won: SweepTransaction,
    state: SweepState,
    error: str | None,
) -> None:
    """Record the group's outcome and, for a confirmed sweep, what it took of each of
    its payments, in the caller's transaction, so they commit together."""
    for a in attempts:
        if a is not won:
            a.state, a.updated_at = S.REPLACED, ctx.now
    won.state, won.last_error, won.updated_at = state, error, ctx.now
    if state == S.CONFIRMED and won.kind != SweepKind.TOPUP:
        queries.add_swept(ctx.session, queries.sweep_links(ctx.session, attempts[0].id))


def _release(
    ctx: Pass, attempts: list[SweepTransaction], held: SweepTransaction
) -> None:
    """Broadcast a token sweep once its gas top-up is mined; fail it if the top-up failed."""
    dep = queries.get_sweep_tx(ctx.session, held.depends_on_id or 0)
    states = (
        queries.sweep_purpose_states(ctx.session, ctx.chain, dep.purpose)
        if dep
        else set()
    )
    ctx.commit()
    if states & {S.MINED, S.CONFIRMED}:
        _send_unsent(ctx, attempts, held)
    elif S.FAILED in states:
        held.state, held.last_error, held.updated_at = (
            S.FAILED,
            "its gas top-up failed",
            ctx.now,
        )
        ctx.commit()
        ctx.tally.counts["failed"] += 1


def _check_pending(
    ctx: Pass, attempts: list[SweepTransaction], latest: SweepTransaction
) -> None:
    stuck = _stuck(ctx, latest.broadcast_at or latest.created_at)
    if ctx.rpc.is_known(latest.tx_hash):
        if stuck:
            _replace(ctx, attempts, latest)
        return
    if ctx.rpc.nonce(latest.from_address, "latest") > latest.nonce:
        _nonce_taken(ctx, attempts, latest)
    elif stuck:
        _replace(ctx, attempts, latest)
    else:  # dropped from the mempool with its nonce still free: send it again
        ctx.tally.counts["rebroadcast"] += 1
        send.broadcast(ctx, latest, first=False)


def _nonce_taken(
    ctx: Pass, attempts: list[SweepTransaction], latest: SweepTransaction
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
        ctx.commit()
    waited = (ctx.now - latest.updated_at).total_seconds()
    if waited < ctx.settings.stuck_after_s:
        ctx.tally.errors.append(
            f"{latest.purpose}: nonce {latest.nonce} is used but no receipt is visible "
            "yet; waiting"
        )
        return
    error = f"nonce {latest.nonce} was used by a transaction ctrip did not sign"
    _finish(ctx, attempts, latest, S.FAILED, error)
    ctx.commit()
    ctx.tally.errors.append(f"{latest.purpose}: {error}")
    ctx.tally.counts["failed"] += 1


def _replace(
    ctx: Pass, attempts: list[SweepTransaction], latest: SweepTransaction
) -> None:
    """Sign a same-nonce replacement with bumped fees (the old attempt may still win)."""
    old = Fees(latest.max_fee_per_gas, latest.max_priority_fee_per_gas)
    floor = native_fees(ctx) if old.legacy else market_fees(ctx, eip1559=True)
    new = old.bumped(ctx.settings.fee_bump_bps, floor)
    old_fee = old.cost_wei(latest.gas_limit) + latest.l1_fee_reserved
    to, data, value = _as_sent(latest, old_fee)
    gas_limit = fees.replacement_gas(
        ctx, latest.gas_limit, sender=latest.from_address, to=to, data=data
    )
    reserve = fee_reserve_wei(
        ctx, gas_limit, new, to=to, value=value, data=data, nonce=latest.nonce
    )
    amount = latest.amount
    if latest.kind == SweepKind.NATIVE:  # the fee comes out of the swept value
        amount = latest.amount + old_fee - reserve.total_wei
        if amount <= 0:
            ctx.tally.errors.append(
                f"{latest.purpose}: a fee bump would exceed the swept value"
            )
            return
        if _uneconomic(ctx, latest, reserve.total_wei, latest.amount + old_fee):
            return
    funded, depends_on = _bump_topup(ctx, latest, reserve.total_wei)
    if not funded:
        return
    row = send.sign_row(
        ctx,
        purpose=latest.purpose,
        kind=latest.kind,
        key_path=latest.key_path,
        to=latest.to_address,
        token=latest.token_address,
        amount=amount,
        nonce=latest.nonce,
        gas_limit=gas_limit,
        fees=new,
        l1_fee_wei=reserve.l1_wei,
        replaces=latest,
        depends_on=depends_on,
    )
    ctx.commit()
    ctx.tally.counts["replaced"] += 1
    ctx.hook("after_sign")
    send.broadcast(ctx, depends_on if depends_on is not None else row)


def _uneconomic(
    ctx: Pass, latest: SweepTransaction, fee_wei: int, total_wei: int
) -> bool:
    """Whether a native sweep's replacement would pay more than
    `max_fee_share_bps` of what it moves, as a new sweep may not: the attempt in
    flight is left to wait (it may still be mined, or the fees fall)."""
    if fee_wei * 10_000 <= ctx.settings.max_fee_share_bps * total_wei:
        return False
    ctx.tally.counts["skipped_uneconomic"] += 1
    error = "a replacement's fee would exceed max_fee_share_bps; waiting"
    if latest.last_error != error:
        latest.last_error, latest.updated_at = error, ctx.now
        ctx.commit()
    return True


def _as_sent(latest: SweepTransaction, fee_wei: int) -> tuple[str, str, int]:
    """(to, calldata, the most value) of the transaction `latest` replaces: a token
    transfer, or value to its recipient (a native sweep's at most what its address
    held for it, the fee `fee_wei` included)."""
    if latest.token_address:
        data = tx.transfer_data(latest.to_address, latest.amount)
        return latest.token_address, data, 0
    value = latest.amount + (fee_wei if latest.kind == SweepKind.NATIVE else 0)
    return latest.to_address, "0x", value


def _bump_topup(
    ctx: Pass, latest: SweepTransaction, reserve_wei: int
) -> tuple[bool, SweepTransaction | None]:
    """The extra gas top-up a token sweep's replacement needs, signed: (funded, the
    top-up or None when none is needed). Not funded: the gas payer cannot."""
    if latest.kind != SweepKind.TOKEN:
        return True, None
    need = reserve_wei - ctx.rpc.balance(latest.from_address)
    if need <= 0:
        return True, None
    if not send.reserve_topup(ctx, latest.from_address, need):
        return False, None
    purpose = f"{latest.purpose}:bump{latest.id}"
    return True, send.sign_topup(ctx, latest.from_address, need, purpose)
