"""Raw JSON-RPC over HTTP with endpoint failover: no result formatting, just the fields.

Transport errors are wrapped as RpcUnavailableError; error text never carries the URL
(which may hold an API key).
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from ctrip_cli.chain.client import BlockHeader
from ctrip_cli.config import ChainConfig
from ctrip_cli.errors import ChainIdMismatchError, RpcRejectedError, RpcUnavailableError


class RpcClient:
    """A minimal ChainClient over raw JSON-RPC."""

    def __init__(self, cfg: ChainConfig, *, timeout_s: float = 10.0) -> None:
        self.cfg = cfg
        self._urls = [u.get_secret_value() for u in cfg.rpc_urls]
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=3.0))
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call, trying each endpoint in order.

        Raises:
            RpcUnavailableError: no endpoint answered.
            RpcRejectedError: an endpoint answered with a JSON-RPC error.
        """
        payload = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
            "params": params,
        }
        failures = []
        for i, url in enumerate(self._urls):
            try:
                resp = self._http.post(url, json=payload)
                resp.raise_for_status()
                body = resp.json()
            except (httpx.HTTPError, ValueError) as exc:
                failures.append(f"endpoint #{i + 1}: {type(exc).__name__}")
                continue
            if "error" in body:
                raise RpcRejectedError(
                    f"{method}: {body['error'].get('message', 'error')}"
                )
            return body["result"]
        raise RpcUnavailableError(
            f"chain {self.cfg.name!r}: no RPC endpoint answered {method} "
            f"({'; '.join(failures)}); check rpc_urls and the nodes, then rerun"
        )

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def check_chain_id(self) -> None:
        actual = self.chain_id()
        if actual != self.cfg.chain_id:
            raise ChainIdMismatchError(
                f"chain {self.cfg.name!r}: the RPC endpoint serves chain id {actual}, "
                f"chains.yaml says {self.cfg.chain_id}; fix rpc_urls or chain_id"
            )

    def head(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def block_header(self, number: int) -> BlockHeader:
        block = self.call("eth_getBlockByNumber", hex(number), False)
        if block is None:
            raise RpcRejectedError(f"block #{number:,} not found")
        return BlockHeader(
            int(block["number"], 16),
            block["hash"],
            block["parentHash"],
            int(block["timestamp"], 16),
        )
