"""Every fee a sweep pays or reserves, computed in one place: the fee prices of the
pass, each transaction's gas, the L1 data fee an OP Stack chain adds, and
`fee_reserve_wei`, the most one transaction can cost.

Fee models (chains.yaml `fee_model`):
- `ethereum`: a transaction costs gas × price. Type-0 native sweeps pay exactly that,
  so they leave no dust.
- `op-stack`: plus an L1 data fee computed from the L1Block predeploy's storage over
  the signed bytes. Its bound (for the transaction's largest encoding, at the pass's
  parameters, plus `L1_FEE_MARGIN_BPS` for the L1 prices moving before inclusion) is
  reserved; what the chain does not charge of it stays on the sender as dust.
- `arbitrum`: the L1 cost is counted in gas, and the estimate moves with the L1
  price, so every transaction's gas is estimated and `ARBITRUM_GAS_MARGIN_BPS`
  added; tips are not charged. Unused gas and the tip stay on the sender as dust.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctrip_cli.chain import opstack, tx
from ctrip_cli.chain.client import Fees
from ctrip_cli.errors import RpcRejectedError
from ctrip_cli.jobs.sweep.context import Pass

# L1 base fee and blob base fee rise by at most 12.5% per L1 block (EIP-1559,
# EIP-4844); the L1Block values move once per L1 block. +50% covers three L1 blocks
# (~36 s) between the pass's read and inclusion; a sweep priced out waits, and its
# fee-bump replacement re-reads the parameters.
L1_FEE_MARGIN_BPS = 5_000
# Arbitrum's eth_estimateGas includes the L1 posting cost divided by the L2 base fee
# and "will change over time (as the L1 calldata price fluctuates)" (Arbitrum docs,
# How Arbitrum works: Gas and fees); unused gas is not charged.
ARBITRUM_GAS_MARGIN_BPS = 2_500
TOKEN_GAS_MARGIN_BPS = 1_000  # +10% over eth_estimateGas; the unused part is refunded
# A token sweep's two transactions (top-up, token transfer: ~1.6 times the bytes) carry
# about three plain transfers' worth of L1 data (the `status` budget on Arbitrum).
ARBITRUM_L1_TXS_PER_TOKEN_SWEEP = 3


@dataclass(frozen=True, slots=True)
class Reserve:
    """What one transaction may cost its sender: gas at the max fee plus the L1 data
    fee bound (`l1_wei`, included in `total_wei`)."""

    total_wei: int
    l1_wei: int = 0


def fee_reserve_wei(
    ctx: Pass,
    gas_limit: int,
    fees: Fees,
    *,
    to: str,
    value: int = 0,
    data: str = "0x",
    nonce: int | None = None,
) -> Reserve:
    """The most a transaction of `gas_limit` at `fees` (to `to`, sending at most
    `value`, with `data`) can cost its sender: what an address must hold (or a top-up
    bring) beside the value it sends.

    Legacy pricing on an `ethereum` chain makes it exact (a native sweep leaves no
    dust); EIP-1559 refunds the unused part of the max fee; `op-stack` adds the L1
    data fee bound.
    """
    gas_wei = fees.cost_wei(gas_limit)
    params = l1_params(ctx)
    if params is None:
        return Reserve(gas_wei)
    length = tx.signed_len_bound(
        chain_id=ctx.cfg.chain_id,
        to=to,
        value=value,
        data=data,
        gas_limit=gas_limit,
        fees=fees,
        nonce=nonce,
    )
    bound = opstack.l1_fee_bound(params, length) + opstack.operator_fee_bound(
        params, gas_limit
    )
    l1_wei = -(-bound * (10_000 + L1_FEE_MARGIN_BPS) // 10_000)
    return Reserve(gas_wei + l1_wei, l1_wei)


def token_sweep_l1_fee_wei(params: opstack.L1FeeParams, chain_id: int) -> int:
    """The L1 data fee bound of one token sweep, its top-up and its transfer each at
    their largest encoding, margin included: what the gas payer spends on L1 data."""
    fees = Fees(2**64 - 1, 2**64 - 1)
    anyone = "0x" + "ff" * 20
    lengths = (
        tx.signed_len_bound(
            chain_id=chain_id,
            to=anyone,
            value=2**128 - 1,
            data="0x",
            gas_limit=2**32 - 1,
            fees=fees,
        ),
        tx.signed_len_bound(
            chain_id=chain_id,
            to=anyone,
            value=0,
            data=tx.transfer_data(anyone, 2**256 - 1),
            gas_limit=2**32 - 1,
            fees=fees,
        ),
    )
    bound = sum(opstack.l1_fee_bound(params, n) for n in lengths)
    return -(-bound * (10_000 + L1_FEE_MARGIN_BPS) // 10_000)


def l1_params(ctx: Pass) -> opstack.L1FeeParams | None:
    """The OP Stack L1 fee parameters, read once per pass (None on other chains)."""
    if ctx.cfg.fee_model != "op-stack":
        return None
    if ctx.reads.l1_params is None:
        ctx.reads.l1_params = ctx.rpc.l1_fee_params()
    return ctx.reads.l1_params


def l1_params_at(ctx: Pass, block: int) -> opstack.L1FeeParams | None:
    """The L1 fee parameters a block's transactions were charged with (the L1Block
    values after the block: its first, deposit, transaction sets them), read once per
    block; None on other chains."""
    if ctx.cfg.fee_model != "op-stack":
        return None
    if block not in ctx.reads.l1_params_at:
        ctx.reads.l1_params_at[block] = ctx.rpc.l1_fee_params(block)
    return ctx.reads.l1_params_at[block]


def l1_fee_paid_wei(ctx: Pass, raw_tx: str, block: int) -> int:
    """The L1 data fee a transaction mined in `block` was charged (0 where the chain
    charges none)."""
    params = l1_params_at(ctx, block)
    if params is None:
        return 0
    return opstack.l1_fee(params, bytes.fromhex(raw_tx.removeprefix("0x")))


def market_fees(ctx: Pass, *, eip1559: bool) -> Fees:
    """The node's fee suggestion (floored at the chain's minimums), read once per pass."""
    if eip1559 not in ctx.reads.fees:
        ctx.reads.fees[eip1559] = ctx.rpc.fees(eip1559=eip1559)
    return ctx.reads.fees[eip1559]


def estimated_gas(ctx: Pass, estimate: int, *, margin_bps: int = 0) -> int:
    """A gas limit from `estimate`: plus `margin_bps`, or Arbitrum's if larger."""
    if ctx.cfg.fee_model == "arbitrum":
        margin_bps = max(margin_bps, ARBITRUM_GAS_MARGIN_BPS)
    return estimate + estimate * margin_bps // 10_000


def native_gas(ctx: Pass, sender: str) -> int:
    """Gas of a plain transfer to the treasury (21,000 unless the treasury is a
    contract): estimated once per pass, or for every transaction on Arbitrum."""
    if ctx.cfg.fee_model == "arbitrum":
        estimate = ctx.rpc.estimate_gas(sender=sender, to=ctx.treasury, value=1)
        return estimated_gas(ctx, estimate)
    if ctx.reads.native_gas is None:
        ctx.reads.native_gas = ctx.rpc.estimate_gas(
            sender=sender, to=ctx.treasury, value=1
        )
    return ctx.reads.native_gas


def topup_gas(ctx: Pass, to: str) -> int:
    """Gas of the gas payer's top-up to `to`: 21,000, or estimated (once per pass
    and address) on Arbitrum."""
    if ctx.cfg.fee_model != "arbitrum":
        return tx.NATIVE_GAS
    if to not in ctx.reads.topup_gas:
        estimate = ctx.rpc.estimate_gas(sender=ctx.payer, to=to, value=1)
        ctx.reads.topup_gas[to] = estimated_gas(ctx, estimate)
    return ctx.reads.topup_gas[to]


def replacement_gas(
    ctx: Pass, gas_limit: int, *, sender: str, to: str, data: str = "0x"
) -> int:
    """A fee-bump replacement's gas: the same, except on Arbitrum, where the estimate
    moved with the L1 price since (never less than before)."""
    if ctx.cfg.fee_model != "arbitrum":
        return gas_limit
    try:
        estimate = ctx.rpc.estimate_gas(sender=sender, to=to, value=1, data=data)
    except RpcRejectedError:
        return gas_limit  # the token refuses now: the old limit is as good as any
    margin = TOKEN_GAS_MARGIN_BPS if data != "0x" else 0
    return max(gas_limit, estimated_gas(ctx, estimate, margin_bps=margin))


def native_dust_bound_wei(ctx: Pass, gas_limit: int, price: Fees, res: Reserve) -> int:
    """The most of a native sweep's reserve the chain may leave on the deposit
    address, at this pass's prices: nothing on `ethereum` (legacy pricing is
    exact), the L1 fee bound on `op-stack`, and on `arbitrum` the gas margin and
    everything above the base fee (tips are not charged)."""
    if ctx.cfg.fee_model != "arbitrum":
        return res.l1_wei
    base = price.max_fee_per_gas
    if ctx.cfg.eip1559:
        current = market_fees(ctx, eip1559=True)
        tip = current.max_priority_fee_per_gas or 0
        base = min((current.max_fee_per_gas - tip) // 2, base)
    estimate = gas_limit * 10_000 // (10_000 + ARBITRUM_GAS_MARGIN_BPS)
    return max(res.total_wei - estimate * base, 0)


def native_fees(ctx: Pass) -> Fees:
    """Type-0 pricing for native sweeps: the fee is exactly gas × price, so no dust stays.

    An EIP-1559 transaction refunds (max fee − effective price) × gas to the sender, which
    would strand that refund on the deposit address. On EIP-1559 chains the price covers
    one block of base-fee growth (+12.5%) plus the tip (at least the chain's minimum).
    """
    if ctx.reads.native_fees is None:
        ctx.reads.native_fees = _legacy_fees(ctx)
    return ctx.reads.native_fees


def _legacy_fees(ctx: Pass) -> Fees:
    price = ctx.rpc.gas_price()
    if not ctx.cfg.eip1559:
        return price
    current = market_fees(ctx, eip1559=True)
    base = (current.max_fee_per_gas - (current.max_priority_fee_per_gas or 0)) // 2
    floor = -(-base * 9 // 8) + (current.max_priority_fee_per_gas or 0)
    return Fees(max(price.max_fee_per_gas, floor))
