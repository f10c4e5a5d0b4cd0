"""A JSON-RPC proxy on 127.0.0.1 in front of anvil that rewrites chosen answers:
`mode` decides what eth_getStorageAt (and, with `oracle`, GasPriceOracle's isFjord
eth_call) answer."""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

MISSING = {"code": -32601, "message": "the method eth_getStorageAt does not exist"}


class Proxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.storage_mode = "pass"  # pass|missing|garbage|empty|null|number|long|zero
        self.oracle_mode = "pass"  # pass|revert|missing|garbage|true|false
        self.seen: list[str] = []
        # op-geth's pool adds the L1 data fee to the balance check at submission
        # (core/txpool/validation.go: `opts.L1CostFn(tx.RollupCostData())` added to
        # the cost before "insufficient funds for gas * price + value").
        self.l1_pool_check = False
        self.rejected: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    answer = proxy.handle(json.loads(body))
                except (
                    Exception
                ) as exc:  # the proxy's own fault: say so, as a node would
                    err = {"code": -32603, "message": f"proxy: {type(exc).__name__}"}
                    answer = {"jsonrpc": "2.0", "id": None, "error": err}
                out = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _forward(self, payload: Any) -> Any:
        parts = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            body = json.dumps(payload)
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def handle(self, payload: Any) -> Any:
        if isinstance(payload, list):
            return [self.one(c) for c in payload]
        return self.one(payload)

    def one(self, call: dict[str, Any]) -> Any:
        method = call.get("method")
        self.seen.append(str(method))
        cid = call.get("id")
        if method == "eth_sendRawTransaction" and self.l1_pool_check:
            err = self._pool_check(str(call["params"][0]))
            if err is not None:
                self.rejected.append(err)
                return {
                    "jsonrpc": "2.0",
                    "id": cid,
                    "error": {"code": -32000, "message": err},
                }
        if method == "eth_getStorageAt" and self.storage_mode != "pass":
            m = self.storage_mode
            if m == "missing":
                return {"jsonrpc": "2.0", "id": cid, "error": MISSING}
            result: Any = {
                "garbage": "0xzz",
                "empty": "0x",
                "null": None,
                "number": 12345,
                "long": "0x" + "f" * 66,
                "zero": "0x0",
            }[m]
            return {"jsonrpc": "2.0", "id": cid, "result": result}
        if (
            method == "eth_call"
            and self.oracle_mode != "pass"
            and str(call["params"][0].get("to", "")).lower()
            == "0x420000000000000000000000000000000000000f"
        ):
            m = self.oracle_mode
            if m == "revert":
                reverted = {"code": 3, "message": "execution reverted"}
                return {"jsonrpc": "2.0", "id": cid, "error": reverted}
            if m == "missing":
                absent = {
                    "code": -32601,
                    "message": "the method eth_call does not exist",
                }
                return {"jsonrpc": "2.0", "id": cid, "error": absent}
            result = {
                "garbage": "0xnothex",
                "true": "0x" + "0" * 63 + "1",
                "false": "0x" + "0" * 64,
            }[m]
            return {"jsonrpc": "2.0", "id": cid, "result": result}
        return self._forward(call)

    def _rpc(self, method: str, *params: Any) -> Any:
        return self._forward(
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        )["result"]

    def _pool_check(self, raw_hex: str) -> str | None:
        import rlp
        from eth_account import Account

        from ctrip_cli.chain import opstack

        raw = bytes.fromhex(raw_hex.removeprefix("0x"))
        sender = Account.recover_transaction(raw_hex)
        if raw[0] == 2:  # [chainId, nonce, tip, maxFee, gas, to, value, ...]
            f = rlp.decode(raw[1:])
            price, gas, value = (int.from_bytes(f[i], "big") for i in (3, 4, 6))
        else:
            f = rlp.decode(raw)
            price, gas, value = (int.from_bytes(f[i], "big") for i in (1, 2, 4))
        words = {
            slot: int(
                self._rpc("eth_getStorageAt", opstack.L1_BLOCK, hex(slot), "latest"), 16
            )
            for slot in opstack.SLOTS
        }
        l1 = opstack.l1_fee(opstack.L1FeeParams.from_slots(words), raw)
        cost = value + gas * price + l1
        balance = int(self._rpc("eth_getBalance", sender, "latest"), 16)
        if balance < cost:
            return (
                "insufficient funds for gas * price + value: "
                f"balance {balance}, tx cost {cost}, overshot {cost - balance}"
            )
        return None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
