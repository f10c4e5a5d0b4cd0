"""Ground truth recomputed from the chain itself: the canonical Transfer logs and native
transactions, read straight from anvil (never through the proxies or ctrip's tables)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


@dataclass(frozen=True)
class Move:
    """One canonical value movement; log_index -1 for a native transaction."""

    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    sender: str
    to: str
    token: str | None  # None: native coin
    amount: int
    ok: bool = True


class ChainTruth:
    """Batch JSON-RPC reads of the whole canonical chain."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(calls), 200):
            chunk = calls[start : start + 200]
            body = [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                for i, (m, p) in enumerate(chunk)
            ]
            conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                conn.request(
                    "POST", "/", json.dumps(body), {"Content-Type": "application/json"}
                )
                replies = json.loads(conn.getresponse().read())
            finally:
                conn.close()
            by_id = {r["id"]: r for r in replies}
            for i in range(len(chunk)):
                if "error" in by_id[i]:
                    raise RuntimeError(f"{chunk[i][0]}: {by_id[i]['error']}")
                out.append(by_id[i]["result"])
        return out

    def head(self) -> int:
        return int(self.batch([("eth_blockNumber", [])])[0], 16)

    def token_moves(self, tokens: list[str]) -> list[Move]:
        logs = self.batch(
            [
                (
                    "eth_getLogs",
                    [
                        {
                            "fromBlock": "0x0",
                            "toBlock": "latest",
                            "address": t,
                            "topics": [TRANSFER_TOPIC],
                        }
                    ],
                )
                for t in tokens
            ]
        )
        return [
            Move(
                tx_hash=log["transactionHash"].lower(),
                log_index=int(log["logIndex"], 16),
                block_number=int(log["blockNumber"], 16),
                block_hash=log["blockHash"].lower(),
                sender=_addr(log["topics"][1]),
                to=_addr(log["topics"][2]),
                token=log["address"].lower(),
                amount=int(log["data"], 16),
            )
            for batch in logs
            for log in batch
            if len(log["topics"]) == 3
        ]

    def native_moves(self) -> list[Move]:
        """Every value-carrying top-level transaction, with its receipt status."""
        head = self.head()
        blocks = self.batch(
            [("eth_getBlockByNumber", [hex(n), True]) for n in range(head + 1)]
        )
        txs = [
            (b, t)
            for b in blocks
            if b
            for t in b["transactions"]
            if int(t["value"], 16) > 0
        ]
        receipts = self.batch(
            [("eth_getTransactionReceipt", [t["hash"]]) for _, t in txs]
        )
        return [
            Move(
                tx_hash=t["hash"].lower(),
                log_index=-1,
                block_number=int(b["number"], 16),
                block_hash=b["hash"].lower(),
                sender=t["from"].lower(),
                to=(t["to"] or "").lower(),
                token=None,
                amount=int(t["value"], 16),
                ok=int(r["status"], 16) == 1,
            )
            for (b, t), r in zip(txs, receipts, strict=True)
        ]

    def receipts(self, tx_hashes: list[str]) -> dict[str, dict[str, Any] | None]:
        found = self.batch([("eth_getTransactionReceipt", [h]) for h in tx_hashes])
        return dict(zip(tx_hashes, found, strict=True))


def _addr(topic: str) -> str:
    return "0x" + topic[-40:].lower()
