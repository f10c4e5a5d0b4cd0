"""Outgoing transactions: fee estimates, ERC-20 calldata, signing, broadcast and receipts.

Wraps `RpcClient.call`; node error texts are matched here and nowhere else. Private keys
stay inside the eth_account object handed to `sign` and never reach a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from ctrip_cli.errors import RpcRejectedError

NATIVE_GAS = 21_000
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
_SEL_TRANSFER = "a9059cbb"
_SEL_BALANCE_OF = "70a08231"


class Rpc(Protocol):
    """What this module needs of `RpcClient`."""

    def call(self, method: str, *params: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Fees:
    """EIP-1559 fees, or a legacy gas price when `max_priority_fee_per_gas` is None."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int | None = None

    @property
    def legacy(self) -> bool:
        return self.max_priority_fee_per_gas is None

    def cost_wei(self, gas_limit: int) -> int:
        """The most this transaction can cost (exactly its cost for legacy pricing)."""
        return gas_limit * self.max_fee_per_gas

    def bumped(self, bump_bps: int, floor: Fees) -> Fees:
        """Replacement fees: both fees raised by at least `bump_bps`, and never below `floor`."""
        max_fee = max(_bump(self.max_fee_per_gas, bump_bps), floor.max_fee_per_gas)
        if self.max_priority_fee_per_gas is None:
            return Fees(max_fee)
        tip = max(
            _bump(self.max_priority_fee_per_gas, bump_bps),
            floor.max_priority_fee_per_gas or 0,
        )
        return Fees(max(max_fee, tip), tip)


def _bump(value: int, bps: int) -> int:
    return -(
        -value * (10_000 + bps) // 10_000
    )  # ceiling, so a +10% floor is never missed


@dataclass(frozen=True, slots=True)
class Signed:
    raw: str
    tx_hash: str


@dataclass(frozen=True, slots=True)
class Log:
    address: str
    topics: tuple[str, ...]
    data: str


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: str
    status: int
    block_number: int
    gas_used: int
    effective_gas_price: int
    logs: tuple[Log, ...]

    @property
    def fee_paid_wei(self) -> int:
        return self.gas_used * self.effective_gas_price


class SendOutcome(StrEnum):
    SENT = "sent"
    KNOWN = "known"  # the node already has it: nothing to do
    NONCE_USED = "nonce used"  # mined already (ours or another attempt): check receipts
    # a pending attempt with this nonce pays more, or the fee is below the base fee:
    # either way a fee-bump replacement follows once the attempt counts as stuck
    UNDERPRICED = "underpriced"
    NO_FUNDS = "insufficient funds"


_REJECTIONS = (
    ("already known", SendOutcome.KNOWN),
    ("already imported", SendOutcome.KNOWN),
    ("known transaction", SendOutcome.KNOWN),
    ("alreadyknown", SendOutcome.KNOWN),
    ("nonce too low", SendOutcome.NONCE_USED),
    ("replacement transaction underpriced", SendOutcome.UNDERPRICED),
    ("underpriced", SendOutcome.UNDERPRICED),
    ("less than block base fee", SendOutcome.UNDERPRICED),  # geth, anvil: fee cap
    ("insufficient funds", SendOutcome.NO_FUNDS),
)


def fees(rpc: Rpc, *, eip1559: bool) -> Fees:
    """Current fees: 2 × base fee + tip for EIP-1559, else the node's gas price.

    Raises:
        RpcUnavailableError: no endpoint answered.
        RpcRejectedError: the node refused the request.
    """
    if not eip1559:
        return Fees(int(rpc.call("eth_gasPrice"), 16))
    block = rpc.call("eth_getBlockByNumber", "latest", False)
    base = int(block.get("baseFeePerGas") or "0x0", 16)
    try:
        tip = int(rpc.call("eth_maxPriorityFeePerGas"), 16)
    except RpcRejectedError:
        tip = max(int(rpc.call("eth_gasPrice"), 16) - base, 0)
    return Fees(2 * base + tip, tip)


def legacy_price(rpc: Rpc) -> Fees:
    """The node's suggested gas price, for type-0 transactions."""
    return Fees(int(rpc.call("eth_gasPrice"), 16))


def balance(rpc: Rpc, address: str, block: int | str = "latest") -> int:
    """Native balance in wei."""
    return int(rpc.call("eth_getBalance", address, _tag(block)), 16)


def token_balance(
    rpc: Rpc, token: str, address: str, block: int | str = "latest"
) -> int:
    """ERC-20 `balanceOf(address)` in base units."""
    data = "0x" + _SEL_BALANCE_OF + _word_address(address)
    result = rpc.call("eth_call", {"to": token, "data": data}, _tag(block))
    return int(result, 16) if result not in (None, "0x") else 0


def nonce(rpc: Rpc, address: str, block: str = "pending") -> int:
    """The account's next nonce as the node sees it (`pending` includes the mempool)."""
    return int(rpc.call("eth_getTransactionCount", address, block), 16)


def estimate_gas(
    rpc: Rpc, *, sender: str, to: str, value: int = 0, data: str = "0x"
) -> int:
    """eth_estimateGas without a gas price, so the sender needs no balance for it."""
    tx = {"from": sender, "to": to, "value": hex(value), "data": data}
    return int(rpc.call("eth_estimateGas", tx), 16)


def transfer_data(to: str, amount: int) -> str:
    """Calldata of ERC-20 `transfer(to, amount)`."""
    return "0x" + _SEL_TRANSFER + _word_address(to) + f"{amount:064x}"


def sign(
    account: Any,
    *,
    chain_id: int,
    nonce: int,
    to: str,
    value: int,
    data: str,
    gas_limit: int,
    fees: Fees,
) -> Signed:
    """Sign a type-0 (legacy) or type-2 (EIP-1559) transaction with `account`."""
    tx: dict[str, Any] = {
        "chainId": chain_id,
        "nonce": nonce,
        "to": to,
        "value": value,
        "data": data,
        "gas": gas_limit,
    }
    if fees.legacy:
        tx["gasPrice"] = fees.max_fee_per_gas
    else:
        tx["maxFeePerGas"] = fees.max_fee_per_gas
        tx["maxPriorityFeePerGas"] = fees.max_priority_fee_per_gas
    # LocalAccount.sign_transaction hands eth_account the raw key bytes, which recomputes
    # the public key (a pure-Python point multiplication) on every signature; its key
    # object skips that.
    key = getattr(account, "_key_obj", None) or account.key
    from eth_account import Account

    signed = Account.sign_transaction(tx, key)
    return Signed(
        "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex()
    )


def send_raw(rpc: Rpc, raw: str) -> SendOutcome:
    """Broadcast stored bytes; a node that already has them is not an error.

    Raises:
        RpcUnavailableError: no endpoint answered (the bytes stay stored; rerun).
        RpcRejectedError: the node refused the transaction for another reason.
    """
    try:
        rpc.call("eth_sendRawTransaction", raw)
    except RpcRejectedError as exc:
        text = str(exc).lower()
        for needle, outcome in _REJECTIONS:
            if needle in text:
                return outcome
        raise
    return SendOutcome.SENT


def is_known(rpc: Rpc, tx_hash: str) -> bool:
    """Whether the node knows the transaction (pending or mined)."""
    return rpc.call("eth_getTransactionByHash", tx_hash) is not None


def receipt(rpc: Rpc, tx_hash: str) -> Receipt | None:
    """The transaction's receipt, or None while it is not mined."""
    return _parse_receipt(tx_hash, rpc.call("eth_getTransactionReceipt", tx_hash))


def receipts(rpc: Rpc, tx_hashes: Sequence[str]) -> dict[str, Receipt | None]:
    """Receipts of many transactions, in JSON-RPC batches when the client offers them."""
    batch = getattr(rpc, "batch", None)
    if batch is None or not tx_hashes:
        return {h: receipt(rpc, h) for h in tx_hashes}
    raw = batch([("eth_getTransactionReceipt", (h,)) for h in tx_hashes])
    return {h: _parse_receipt(h, r) for h, r in zip(tx_hashes, raw, strict=True)}


def _parse_receipt(tx_hash: str, r: dict[str, Any] | None) -> Receipt | None:
    if r is None or r.get("blockNumber") is None:
        return None
    logs = tuple(
        Log(lg["address"].lower(), tuple(t.lower() for t in lg["topics"]), lg["data"])
        for lg in r.get("logs", [])
    )
    return Receipt(
        tx_hash=tx_hash,
        status=int(r["status"], 16),
        block_number=int(r["blockNumber"], 16),
        gas_used=int(r["gasUsed"], 16),
        effective_gas_price=int(r.get("effectiveGasPrice") or "0x0", 16),
        logs=logs,
    )


def has_transfer_log(
    rc: Receipt, *, token: str, sender: str, to: str, amount: int
) -> bool:
    """Whether the receipt holds the ERC-20 Transfer(sender → to, amount) of `token`.

    Tokens like USDT return nothing from `transfer`, so the log, not a return value, is
    the proof that tokens moved.
    """
    want = (TRANSFER_TOPIC, "0x" + _word_address(sender), "0x" + _word_address(to))
    for log in rc.logs:
        if log.address == token.lower() and log.topics[:3] == want:
            data = log.data.removeprefix("0x") or "0"
            if int(data, 16) == amount:
                return True
    return False


def _word_address(address: str) -> str:
    return address.lower().removeprefix("0x").rjust(64, "0")


def _tag(block: int | str) -> str:
    return hex(block) if isinstance(block, int) else block
