"""Parse raw JSON-RPC results into domain types, reading only the fields ctrip needs.

Every field taken from a node is validated here (quantities are hex, hashes 32 bytes,
addresses 20 bytes): a malformed answer raises `Malformed`, which the client turns into
an RpcRejectedError naming the endpoint, before anything reaches the database.
No `extraData` is ever read, so POA chains (BSC, Polygon: long extra data) need nothing
special. Addresses from the node are lowercase; domain types carry them checksummed.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from ctrip_cli.chain.client import BlockHeader, NativeTransfer, TokenTransfer
from ctrip_cli.config import to_checksum

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
_CHECKSUMS: dict[str, str] = {}
_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}\Z")
_HASH = re.compile(r"0x[0-9a-fA-F]{64}\Z")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}\Z")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*\Z")
_BLOOM = re.compile(r"0x[0-9a-fA-F]{512}\Z")


class Malformed(ValueError):
    """A node's answer lacks a field or holds a value of the wrong shape."""


def quantity(value: Any, what: str = "quantity") -> int:
    if not isinstance(value, str) or not _QUANTITY.match(value):
        raise Malformed(f"{what} is not a hex quantity")
    return int(value, 16)


def index(value: Any, what: str) -> int:
    """A block number, log index or timestamp: a quantity that fits a BIGINT."""
    n = quantity(value, what)
    if n >= 2**63:
        raise Malformed(f"{what} is out of range")
    return n


def log_position(value: Any) -> int:
    """A log's index in its block: the transfers table keeps it in a 32-bit INTEGER."""
    n = quantity(value, "log index")
    if n >= 2**31:
        raise Malformed("log index is out of range")
    return n


def hash32(value: Any, what: str = "hash") -> str:
    if not isinstance(value, str) or not _HASH.match(value):
        raise Malformed(f"{what} is not a 32-byte hex hash")
    return value.lower()


def address(value: Any, what: str = "address") -> str:
    """A lowercase 20-byte address."""
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise Malformed(f"{what} is not a 20-byte hex address")
    return value.lower()


def data(value: Any, what: str = "data") -> str:
    if value is None:
        return "0x"
    if not isinstance(value, str) or not _DATA.match(value):
        raise Malformed(f"{what} is not hex data")
    return value


def obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what} is not an object")
    return value


def checksum(addr: str) -> str:
    """EIP-55 form of a node address, memoised (deposit addresses repeat)."""
    lowered = addr.lower()
    found = _CHECKSUMS.get(lowered)
    if found is None:
        if len(_CHECKSUMS) > 200_000:
            _CHECKSUMS.clear()
        found = _CHECKSUMS[lowered] = to_checksum(lowered)
    return found


def header(block: Any) -> BlockHeader:
    """A block header from an `eth_getBlockByNumber` result."""
    block = obj(block, "block")
    bloom = block.get("logsBloom")
    return BlockHeader(
        number=index(block.get("number"), "block number"),
        hash=hash32(block.get("hash"), "block hash"),
        parent_hash=hash32(block.get("parentHash"), "parent hash"),
        timestamp=index(block.get("timestamp"), "timestamp"),
        logs_bloom=int(bloom, 16)
        if isinstance(bloom, str) and _BLOOM.match(bloom)
        else None,
    )


def address_topic(addr: str) -> str:
    """The 32-byte log topic of an address (left-padded, lowercase)."""
    return "0x" + addr[2:].lower().rjust(64, "0")


def topic_address(topic: str) -> str:
    return "0x" + hash32(topic, "topic")[-40:]


def token_transfer(
    entry: Any, *, block_hash: str | None = None
) -> TokenTransfer | None:
    """A `Transfer(address,address,uint256)` log of a positive amount, else None.

    ERC-721 transfers (four topics) and zero-value transfers (anyone may emit them to
    any address) are not payments.
    """
    entry = obj(entry, "log")
    topics = entry.get("topics")
    if not isinstance(topics, list) or len(topics) != 3:
        return None
    if str(topics[0]).lower() != TRANSFER_TOPIC:
        return None
    raw = data(entry.get("data"), "log data")
    amount = int(raw[2:66], 16) if len(raw) > 2 else 0
    if amount == 0:
        return None
    return TokenTransfer(
        tx_hash=hash32(entry.get("transactionHash"), "transaction hash"),
        log_index=log_position(entry.get("logIndex")),
        block_number=index(entry.get("blockNumber"), "block number"),
        block_hash=hash32(block_hash or entry.get("blockHash"), "block hash"),
        token_address=checksum(address(entry.get("address"), "token address")),
        from_address=checksum(topic_address(topics[1])),
        to_address=checksum(topic_address(topics[2])),
        amount=amount,
    )


def receipt_pays(receipt: Any, wanted: Collection[str]) -> bool:
    """A successful receipt of a top-level transaction to one of `wanted` (lowercase)."""
    receipt = obj(receipt, "receipt")
    to = receipt.get("to")
    return (
        isinstance(to, str) and to.lower() in wanted and receipt.get("status") == "0x1"
    )


def tx_pays(tx: Any, wanted: Collection[str]) -> bool:
    tx = obj(tx, "transaction")
    to = tx.get("to")
    return (
        isinstance(to, str)
        and to.lower() in wanted
        and quantity(tx.get("value") or "0x0", "value") > 0
    )


def native_transfer(tx: Any, receipt: Any) -> NativeTransfer | None:
    """The transfer of a matched transaction, or None if it moved nothing or failed."""
    # A transaction in a block whose receipt or body the node cannot find is a node
    # behind its own answers (a lagging backend, an index still being built, history
    # pruned): never "no transfer", or the cursor would pass a payment.
    if receipt is None:
        raise Malformed(
            "no receipt for a transaction of the block (the node is lagging)"
        )
    if tx is None:
        raise Malformed(
            "no transaction for a receipt of the block (the node is lagging)"
        )
    receipt = obj(receipt, "receipt")
    if receipt.get("status") != "0x1":
        return None
    value = quantity(obj(tx, "transaction").get("value") or "0x0", "value")
    if value == 0:
        return None
    return NativeTransfer(
        tx_hash=hash32(receipt.get("transactionHash"), "transaction hash"),
        block_number=index(receipt.get("blockNumber"), "block number"),
        block_hash=hash32(receipt.get("blockHash"), "block hash"),
        from_address=checksum(address(receipt.get("from"), "sender")),
        to_address=checksum(address(receipt.get("to"), "recipient")),
        amount=value,
    )


def bloom_bits(item: bytes) -> int:
    """The three bits an item sets in a logs bloom (yellow paper, section 4.3.1)."""
    from eth_hash.auto import keccak

    digest = keccak(item)
    mask = 0
    for i in (0, 2, 4):
        mask |= 1 << (((digest[i] << 8) | digest[i + 1]) & 2047)
    return mask


def bloom_admits(bloom: int, mask: int) -> bool:
    return bloom & mask == mask
