"""Sign and send: a signed transaction is a row flushed before anything is broadcast,
and a broadcast sends the stored bytes (a rerun resends them, never signs again).
Also the nonces and the gas payer's budget for top-ups."""

from __future__ import annotations

from ctrip_cli.chain import tx
from ctrip_cli.chain.client import Fees, SendOutcome
from ctrip_cli.db import queries
from ctrip_cli.db.models import SweepTransaction
from ctrip_cli.domain.statuses import SweepKind, SweepState
from ctrip_cli.errors import RpcRejectedError
from ctrip_cli.jobs.sweep.context import Pass
from ctrip_cli.jobs.sweep.fees import Reserve, fee_reserve_wei, market_fees, topup_gas
from ctrip_cli.money import format_units


def sign_row(
    ctx: Pass,
    *,
    purpose: str,
    kind: SweepKind | str,
    key_path: str,
    to: str,
    token: str | None,
    amount: int,
    nonce: int,
    gas_limit: int,
    fees: Fees,
    l1_fee_wei: int = 0,
    replaces: SweepTransaction | None = None,
    depends_on: SweepTransaction | None = None,
) -> SweepTransaction:
    """Sign and add the row (flushed, not committed); the caller commits before sending.

    `l1_fee_wei` is the L1 data fee bound the transaction's sender holds for it.
    """
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
    ctx.tally.counts["signed"] += 1
    return queries.add_sweep_tx(
        ctx.session,
        SweepTransaction(
            chain=ctx.chain,
            purpose=purpose,
            kind=str(kind),
            key_path=key_path,
            from_address=account.address,
            to_address=to,
            token_address=token,
            amount=amount,
            nonce=nonce,
            gas_limit=gas_limit,
            max_fee_per_gas=fees.max_fee_per_gas,
            max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
            l1_fee_reserved=l1_fee_wei,
            raw_tx=signed.raw,
            tx_hash=signed.tx_hash,
            state=SweepState.HELD if depends_on is not None else SweepState.SIGNED,
            replaces_id=replaces.id if replaces else None,
            depends_on_id=depends_on.id if depends_on else None,
            created_at=ctx.now,
            updated_at=ctx.now,
        ),
    )


def broadcast(
    ctx: Pass, row: SweepTransaction, *, first: bool = True, commit: bool = True
) -> SendOutcome | None:
    """Send the stored bytes; the outcome is recorded, a refusal is data, not an error.

    Returns the node's answer (None: it refused the transaction for another reason).
    """
    try:
        outcome = ctx.rpc.send_raw(row.raw_tx)
    except RpcRejectedError as exc:
        row.last_error, row.updated_at = str(exc)[:500], ctx.now
        ctx.tally.errors.append(f"{row.purpose}: {exc}")
        if commit:
            ctx.commit()
        return None
    if outcome is SendOutcome.NO_FUNDS:
        row.last_error = (
            f"node refused {row.tx_hash}: insufficient funds; retried next pass"
        )
        ctx.tally.errors.append(f"{row.purpose}: {row.last_error}")
    else:
        row.state, row.last_error = SweepState.PENDING, None
        row.broadcast_at = row.broadcast_at or ctx.now
        ctx.tally.counts["broadcast"] += int(first)
    row.updated_at = ctx.now
    if commit:  # else the caller commits the batch; a lost update only means a resend
        ctx.commit()
    ctx.hook("after_broadcast")
    return outcome


def topup_reserve(ctx: Pass, to: str, value: int) -> Reserve:
    """What sending a gas top-up of `value` to `to` costs the gas payer at most."""
    price = market_fees(ctx, eip1559=ctx.cfg.eip1559)
    return fee_reserve_wei(ctx, topup_gas(ctx, to), price, to=to, value=value)


def reserve_topup(ctx: Pass, to: str, value: int) -> bool:
    """Whether the gas payer can send `value` to `to` plus the top-up's fee; reserves
    it if so."""
    total = value + topup_reserve(ctx, to, value).total_wei
    if not _payer_can_fund(ctx, total):
        return False
    ctx.reads.payer_spent_wei += total
    return True


def sign_topup(ctx: Pass, to: str, value: int, purpose: str) -> SweepTransaction:
    """Sign (not commit) exactly `value` wei from the gas payer to `to`."""
    ctx.tally.counts["topups"] += 1
    return sign_row(
        ctx,
        purpose=purpose,
        kind=SweepKind.TOPUP,
        key_path=ctx.settings.gas_payer_path,
        to=to,
        token=None,
        amount=value,
        nonce=next_nonce(ctx, ctx.payer),
        gas_limit=topup_gas(ctx, to),
        fees=market_fees(ctx, eip1559=ctx.cfg.eip1559),
        l1_fee_wei=topup_reserve(ctx, to, value).l1_wei,
    )


def _payer_can_fund(ctx: Pass, wei: int) -> bool:
    payer = ctx.payer
    if ctx.reads.payer_balance_wei is None:
        ctx.reads.payer_balance_wei = ctx.rpc.balance(payer, "pending")
    available = ctx.reads.payer_balance_wei - ctx.reads.payer_spent_wei
    if available >= wei:
        return True
    native = ctx.cfg.native
    ctx.tally.blocked.append(
        f"gas payer {payer} ({ctx.settings.gas_payer_path}) has "
        f"{format_units(max(available, 0), native.decimals)} {native.symbol} available, "
        f"needs {format_units(wei, native.decimals)} {native.symbol} to fund a token "
        "sweep's gas; send it more and rerun (the payments stay confirmed)"
    )
    return False


def next_nonce(ctx: Pass, address: str) -> int:
    """Our next nonce for `address`: the database's under the job lock, or the node's
    pending nonce when something else has used the account since."""
    if address not in ctx.reads.next_nonces:
        node = node_nonce(ctx, address)
        ours = queries.max_sweep_nonce(ctx.session, ctx.chain, address)
        ctx.reads.next_nonces[address] = max(node, -1 if ours is None else ours + 1)
    n = ctx.reads.next_nonces[address]
    ctx.reads.next_nonces[address] = n + 1
    return n


def node_nonce(ctx: Pass, address: str) -> int:
    if address not in ctx.reads.node_nonces:
        ctx.reads.node_nonces[address] = ctx.rpc.nonce(address, "pending")
    return ctx.reads.node_nonces[address]
