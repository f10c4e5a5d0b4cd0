"""Parse raw JSON-RPC results into domain types, reading only the fields ctrip needs.

No `extraData` is ever read, so POA chains (BSC, Polygon: long extra data) need nothing
special. Addresses from the node are lowercase; domain types carry them checksummed.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ctrip_cli.chain.client import BlockHeader, NativeTransfer, TokenTransfer
from ctrip_cli.config import to_checksum

_CHECKSUMS: dict[str, str] = {}


def checksum(address: str) -> str:
    """EIP-55 form of a node address, memoised (deposit addresses repeat)."""
    lowered = address.lower()
    found = _CHECKSUMS.get(lowered)
    if found is None:
        if len(_CHECKSUMS) > 200_000:
            _CHECKSUMS.clear()
        found = _CHECKSUMS[lowered] = to_checksum(lowered)
    return found


def header(block: dict[str, Any]) -> BlockHeader:
    """A block header from an `eth_getBlockByNumber` result."""
    return BlockHeader(
        number=int(block["number"], 16),
        hash=block["hash"],
        parent_hash=block["parentHash"],
        timestamp=int(block["timestamp"], 16),
    )


def address_topic(address: str) -> str:
    """The 32-byte log topic of an address (left-padded, lowercase)."""
    return "0x" + address[2:].lower().rjust(64, "0")


def topic_address(topic: str) -> str:
    return "0x" + topic[-40:]


def token_transfer(entry: dict[str, Any]) -> TokenTransfer:
    """A `Transfer(address,address,uint256)` log; an empty data field means 0."""
    topics = entry["topics"]
    data = entry.get("data") or "0x"
    return TokenTransfer(
        tx_hash=entry["transactionHash"],
        log_index=int(entry["logIndex"], 16),
        block_number=int(entry["blockNumber"], 16),
        block_hash=entry["blockHash"],
        token_address=checksum(entry["address"]),
        from_address=checksum(topic_address(topics[1])),
        to_address=checksum(topic_address(topics[2])),
        amount=int(data[:66], 16) if len(data) > 2 else 0,
    )


def is_transfer_log(entry: dict[str, Any]) -> bool:
    """Standard ERC-20 Transfer logs have three topics (ERC-721 has four)."""
    return len(entry.get("topics", ())) == 3


def receipt_pays(receipt: dict[str, Any], wanted: Collection[str]) -> bool:
    """A successful receipt of a top-level transaction to one of `wanted` (lowercase)."""
    to = receipt.get("to")
    return to is not None and to.lower() in wanted and receipt.get("status") == "0x1"


def tx_pays(tx: dict[str, Any], wanted: Collection[str]) -> bool:
    to = tx.get("to")
    return (
        to is not None
        and to.lower() in wanted
        and int(tx.get("value") or "0x0", 16) > 0
    )


def native_transfer(
    tx: dict[str, Any] | None, receipt: dict[str, Any]
) -> NativeTransfer | None:
    """The transfer of a matched transaction, or None if it moved nothing or failed."""
    if tx is None or receipt.get("status") != "0x1":
        return None
    value = int(tx.get("value") or "0x0", 16)
    if value == 0:
        return None
    return NativeTransfer(
        tx_hash=receipt["transactionHash"],
        block_number=int(receipt["blockNumber"], 16),
        block_hash=receipt["blockHash"],
        from_address=checksum(receipt["from"]),
        to_address=checksum(receipt["to"]),
        amount=value,
    )
