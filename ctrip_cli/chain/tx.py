"""Outgoing transactions, the pure part: ERC-20 calldata, signing, receipt parsing and
the Transfer-log proof. Chain reads and broadcasts go through the ChainClient.

Private keys stay inside the eth_account object handed to `sign` and never reach a
message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ctrip_cli.chain import parse
from ctrip_cli.chain.client import Fees, Log, Receipt

NATIVE_GAS = 21_000
TRANSFER_TOPIC = parse.TRANSFER_TOPIC
_SEL_TRANSFER = "a9059cbb"
_SEL_BALANCE_OF = "70a08231"


@dataclass(frozen=True, slots=True)
class Signed:
    raw: str
    tx_hash: str


def transfer_data(to: str, amount: int) -> str:
    """Calldata of ERC-20 `transfer(to, amount)`."""
    return "0x" + _SEL_TRANSFER + _word_address(to) + f"{amount:064x}"


def balance_of_data(address: str) -> str:
    """Calldata of ERC-20 `balanceOf(address)`."""
    return "0x" + _SEL_BALANCE_OF + _word_address(address)


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
    txn: dict[str, Any] = {
        "chainId": chain_id,
        "nonce": nonce,
        "to": to,
        "value": value,
        "data": data,
        "gas": gas_limit,
    }
    if fees.legacy:
        txn["gasPrice"] = fees.max_fee_per_gas
    else:
        txn["maxFeePerGas"] = fees.max_fee_per_gas
        txn["maxPriorityFeePerGas"] = fees.max_priority_fee_per_gas
    # LocalAccount.sign_transaction hands eth_account the raw key bytes, which recomputes
    # the public key (a pure-Python point multiplication) on every signature; its key
    # object skips that.
    key = getattr(account, "_key_obj", None) or account.key
    from eth_account import Account

    signed = Account.sign_transaction(txn, key)
    return Signed(
        "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex()
    )


# Signature values as long as any can be (RLP drops leading zero bytes of r and s).
_MAX_WORD = 2**256 - 1
_MAX_NONCE = 2**64 - 1


def signed_len_bound(
    *,
    chain_id: int,
    to: str,
    value: int,
    data: str,
    gas_limit: int,
    fees: Fees,
    nonce: int | None = None,
) -> int:
    """The most bytes the signed transaction can take, for any signature (and any
    nonce when `nonce` is None) and any value up to `value`: what an L1 data fee is
    bounded from before the transaction is signed."""
    import rlp

    fields: list[object] = [
        _MAX_NONCE if nonce is None else nonce,
        fees.max_fee_per_gas,
        gas_limit,
        bytes.fromhex(to.removeprefix("0x")),
        value,
        bytes.fromhex(data.removeprefix("0x")),
    ]
    if fees.legacy:  # EIP-155: v = chain_id * 2 + 35 or 36
        return len(rlp.encode([*fields, chain_id * 2 + 36, _MAX_WORD, _MAX_WORD]))
    # EIP-1559: chainId, nonce, tip, max fee, gas, to, value, data, access list, y
    typed = [chain_id, fields[0], fees.max_priority_fee_per_gas, *fields[1:], [], 1]
    return 1 + len(rlp.encode([*typed, _MAX_WORD, _MAX_WORD]))


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a signed transaction says (for fakes and checks; never re-signed)."""

    sender: str
    nonce: int
    to: str
    value: int
    data: str
    gas_limit: int
    fees: Fees
    tx_hash: str


def decode(raw: str) -> Decoded:
    """Decode signed transaction bytes (type 0 or 2) and recover the sender."""
    from eth_account import Account
    from eth_account.typed_transactions import (  # type: ignore[attr-defined]
        TypedTransaction,
    )
    from eth_hash.auto import keccak
    from hexbytes import HexBytes

    blob = bytes.fromhex(raw.removeprefix("0x"))
    sender = Account.recover_transaction(blob)
    if blob[0] < 0x80:
        fields = TypedTransaction.from_bytes(HexBytes(blob)).as_dict()
        fees = Fees(fields["maxFeePerGas"], fields["maxPriorityFeePerGas"])
    else:
        import rlp

        items = rlp.decode(blob)
        fields = {
            "nonce": int.from_bytes(items[0], "big"),
            "gas": int.from_bytes(items[2], "big"),
            "to": items[3],
            "value": int.from_bytes(items[4], "big"),
            "data": items[5],
        }
        fees = Fees(int.from_bytes(items[1], "big"))
    to = fields["to"]
    to_hex = to if isinstance(to, str) else "0x" + bytes(to).hex()
    data = fields["data"]
    data_hex = data if isinstance(data, str) else "0x" + bytes(data).hex()
    return Decoded(
        sender=sender,
        nonce=fields["nonce"],
        to=parse.checksum(to_hex),
        value=fields["value"],
        data=data_hex,
        gas_limit=fields["gas"],
        fees=fees,
        tx_hash="0x" + keccak(blob).hex(),
    )


def parse_receipt(tx_hash: str, r: Any) -> Receipt | None:
    """A receipt from `eth_getTransactionReceipt`, or None while it is not mined."""
    if r is None or r.get("blockNumber") is None:
        return None
    logs = tuple(
        Log(
            parse.address(lg.get("address")),
            tuple(str(t).lower() for t in lg.get("topics") or ()),
            parse.data(lg.get("data")),
        )
        for lg in r.get("logs") or ()
    )
    return Receipt(
        tx_hash=tx_hash,
        status=parse.quantity(r.get("status"), "status"),
        block_number=parse.quantity(r.get("blockNumber"), "block number"),
        gas_used=parse.quantity(r.get("gasUsed"), "gas used"),
        effective_gas_price=parse.quantity(r.get("effectiveGasPrice") or "0x0"),
        logs=logs,
        # op-geth and op-reth report the L1 data fee they charged; anvil does not.
        l1_fee_wei=None if r.get("l1Fee") is None else parse.quantity(r.get("l1Fee")),
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
