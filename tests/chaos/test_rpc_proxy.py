"""The fault-injecting proxy does what each fault says, against the session's anvil, and
ctrip's RPC client fails over or fails cleanly behind it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from ctrip_cli.chain.evm import EvmChain
from ctrip_cli.config import ChainConfig, NativeConfig
from ctrip_cli.errors import ChainIdMismatchError, RpcRejectedError, RpcUnavailableError
from scripts.chaos.rpc_proxy import RpcProxy

pytestmark = [pytest.mark.chaos, pytest.mark.evm]


@pytest.fixture
def proxies(anvil, tokens) -> Iterator[tuple[RpcProxy, RpcProxy]]:
    with RpcProxy(anvil.url) as first, RpcProxy(anvil.url) as second:
        yield first, second


def _post(proxy: RpcProxy, body: object, timeout_s: float = 5.0) -> httpx.Response:
    return httpx.post(proxy.url, json=body, timeout=timeout_s)


def _call(method: str, *params: object, id_: int = 1) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}


def _client(*urls: str, chain_id: int = 31337) -> EvmChain:
    cfg = ChainConfig(
        name="local",
        chain_id=chain_id,
        rpc_urls=[SecretStr(u) for u in urls],
        native=NativeConfig(symbol="ETH"),
    )
    return EvmChain.open(
        cfg, timeout_s=1.0, attempts=2, backoff_s=0.01, rate_wait_budget_s=1.0
    )


def test_pass_through_by_default(proxies, anvil):
    reply = _post(proxies[0], _call("eth_blockNumber")).json()
    assert int(reply["result"], 16) == anvil.block_number()


@pytest.mark.parametrize(
    ("fault", "status"), [("429", 429), ("5xx", None), ("malformed", 200)]
)
def test_http_level_faults(proxies, fault, status):
    proxy = proxies[0]
    proxy.fault = fault
    resp = _post(proxy, _call("eth_blockNumber"))
    if status is not None:
        assert resp.status_code == status
    else:
        assert resp.status_code in (502, 503, 504)
    if fault == "429":
        assert resp.headers["retry-after"] == "1"
    if fault == "malformed":
        with pytest.raises(ValueError):
            json.loads(resp.content)
    assert proxy.injected[fault] == 1


def test_reset_and_hang_break_the_connection(proxies):
    proxy = proxies[0]
    proxy.fault = "reset"
    with pytest.raises(httpx.TransportError):
        _post(proxy, _call("eth_blockNumber"))
    proxy.fault, proxy.hang_s = "hang", 3.0
    with pytest.raises(httpx.TimeoutException):
        _post(proxy, _call("eth_blockNumber"), timeout_s=0.3)


def test_budget_limits_the_faults(proxies):
    proxy = proxies[0]
    proxy.fault, proxy.fault_budget = "5xx", 1
    assert _post(proxy, _call("eth_blockNumber")).status_code >= 500
    assert _post(proxy, _call("eth_blockNumber")).status_code == 200


def test_batch_error_spoils_one_entry(proxies):
    proxy = proxies[0]
    proxy.fault = "batch_error"
    batch = [_call("eth_blockNumber", id_=i) for i in range(1, 5)]
    reply = _post(proxy, batch).json()
    assert sorted(r["id"] for r in reply) == [1, 2, 3, 4]
    assert sum("error" in r for r in reply) == 1


def test_lagging_node_hides_newer_blocks(proxies, anvil):
    proxy = proxies[0]
    proxy.fault, proxy.lag_blocks = "lag", 2
    head = anvil.block_number()
    assert head >= 2
    reply = _post(
        proxy,
        [
            _call("eth_blockNumber"),
            _call("eth_getBlockByNumber", hex(head), False, id_=2),
        ],
    ).json()
    assert int(reply[0]["result"], 16) == head - 2
    assert reply[1]["result"] is None


def test_wrong_chain_id(proxies):
    proxy = proxies[0]
    proxy.fault, proxy.wrong_chain_id = "chain_id", 56
    assert _post(proxy, _call("eth_chainId")).json()["result"] == hex(56)


def test_client_fails_over_to_the_healthy_endpoint(proxies, anvil):
    first, second = proxies
    first.fault = "5xx"
    client = _client(first.url, second.url)
    try:
        assert client.head() == anvil.block_number()
    finally:
        client.close()
    assert first.injected["5xx"] >= 1


@pytest.mark.parametrize("fault", ["reset", "429", "5xx", "malformed"])
def test_client_fails_cleanly_when_every_endpoint_fails(proxies, fault):
    first, second = proxies
    first.fault = second.fault = fault
    client = _client(first.url + "/?apikey=SECRETKEY", second.url)
    try:
        with pytest.raises(RpcUnavailableError) as info:
            client.head()
    finally:
        client.close()
    assert "SECRETKEY" not in str(info.value)
    assert "127.0.0.1" not in str(info.value)


def test_client_rejects_batch_errors_and_wrong_chains(proxies):
    first, _ = proxies
    client = _client(first.url)
    try:
        first.fault = "batch_error"
        with pytest.raises(RpcRejectedError):
            client.head()
        first.fault = "chain_id"
        with pytest.raises(ChainIdMismatchError):
            client.check_chain_id()
    finally:
        client.close()
