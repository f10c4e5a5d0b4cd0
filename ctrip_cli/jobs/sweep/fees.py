"""Every fee a sweep pays or reserves, computed in one place: the fee prices of the
pass, a plain transfer's gas, and `fee_reserve_wei`, the most one transaction can cost.
"""

from __future__ import annotations

from ctrip_cli.chain.client import Fees
from ctrip_cli.jobs.sweep.context import Pass


def fee_reserve_wei(ctx: Pass, gas_limit: int, fees: Fees) -> int:
    """The most a transaction of `gas_limit` at `fees` can cost its sender: what a
    deposit address must hold (or a top-up must bring) beside the value it sends.

    Legacy pricing makes it exact (a native sweep leaves no dust); EIP-1559 refunds
    the unused part of the max fee.
    """
    del ctx  # the pass's chain: rollups add a data fee here
    return fees.cost_wei(gas_limit)


def market_fees(ctx: Pass, *, eip1559: bool) -> Fees:
    """The node's fee suggestion, read once per pass."""
    if eip1559 not in ctx.reads.fees:
        ctx.reads.fees[eip1559] = ctx.rpc.fees(eip1559=eip1559)
    return ctx.reads.fees[eip1559]


def native_gas(ctx: Pass, sender: str) -> int:
    """Gas of a plain transfer to the treasury (21,000 unless the treasury is a contract)."""
    if ctx.reads.native_gas is None:
        ctx.reads.native_gas = ctx.rpc.estimate_gas(
            sender=sender, to=ctx.treasury, value=1
        )
    return ctx.reads.native_gas


def native_fees(ctx: Pass) -> Fees:
    """Type-0 pricing for native sweeps: the fee is exactly gas × price, so no dust stays.

    An EIP-1559 transaction refunds (max fee − effective price) × gas to the sender, which
    would strand that refund on the deposit address. On EIP-1559 chains the price covers
    one block of base-fee growth (+12.5%) plus the tip.
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
