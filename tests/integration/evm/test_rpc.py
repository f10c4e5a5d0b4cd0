"""The raw JSON-RPC client: real anvil for reading, MockTransport for faults (429, 5xx,
dead endpoints, JSON-RPC errors, "too many results"), and the POA header parser."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctrip_cli.chain import parse
from ctrip_cli.chain.client import Watched
from ctrip_cli.chain.evm import EvmChain
from ctrip_cli.config import ChainConfig, load_chains
from ctrip_cli.errors import RpcRejectedError, RpcUnavailableError
from tests.evm import Anvil, send_native, send_reverting_native
from tests.evm_fixtures import TestTokens
from tests.integration.evm.scan_world import PAYER, chains_yaml

pytestmark = pytest.mark.evm


def _cfg(
    tmp_path: Path, anvil_url: str, tokens: TestTokens, urls: list[str] | None = None
) -> ChainConfig:
    path = tmp_path / "chains.yaml"
    path.write_text(chains_yaml(anvil_url, tokens, rpc_urls=urls))
    return load_chains(path, {})["local"]


def test_native_transfers_by_block_receipts_and_by_full_blocks_agree(
    anvil_snapshot: Anvil, tokens: TestTokens, tmp_path: Path
) -> None:
    anvil = anvil_snapshot
    to = "0x" + "42" * 20
    start = anvil.block_number() + 1
    good = send_native(anvil, PAYER, to, 5)
    send_native(anvil, PAYER, "0x" + "43" * 20, 6)  # someone else
    send_reverting_native(anvil, PAYER, 7, reverter=tokens.reverter)
    end = anvil.block_number()
    cfg = _cfg(tmp_path, anvil.url, tokens)
    watched = Watched(native={to, tokens.reverter.lower()})
    by_receipts = EvmChain.open(cfg.model_copy(update={"native_read": "receipts"}))
    by_blocks = EvmChain.open(cfg.model_copy(update={"native_read": "blocks"}))

    fast = by_receipts.transfers(start, end, watched)
    slow = by_blocks.transfers(start, end, watched)

    assert [(t.tx_hash, t.amount) for t in fast.native] == [(good, 5)]
    assert slow.native == fast.native
    assert (fast.source, slow.source) == ("receipts+traces", "blocks+traces")
    by_receipts.close()
    by_blocks.close()


def test_block_headers_in_one_batch(
    anvil: Anvil, tokens: TestTokens, tmp_path: Path
) -> None:
    client = EvmChain.open(_cfg(tmp_path, anvil.url, tokens))
    head = client.head()
    before = client.round_trips

    headers = client.block_headers(range(head + 1))

    assert [h.number for h in headers] == list(range(head + 1))
    assert all(b.parent_hash == a.hash for a, b in itertools.pairwise(headers))
    assert client.round_trips == before + 1
    client.check_chain_id()
    client.close()


def _mock(cfg_path: Path, handler: Any, urls: list[str]) -> EvmChain:
    doc = chains_yaml("http://unused", _Tokens(), rpc_urls=urls)
    cfg_path.write_text(doc)
    cfg = load_chains(cfg_path, {})["local"]
    return EvmChain.open(
        cfg, attempts=3, backoff_s=0.001, transport=httpx.MockTransport(handler)
    )


class _Tokens:
    usdc = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    dai = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
    usdt = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"


def _answer(request: httpx.Request, result: Any) -> httpx.Response:
    body = json.loads(request.content)
    if isinstance(body, list):
        return httpx.Response(
            200,
            json=[{"jsonrpc": "2.0", "id": c["id"], "result": result} for c in body],
        )
    return httpx.Response(
        200, json={"jsonrpc": "2.0", "id": body["id"], "result": result}
    )


def test_retries_429_and_5xx_with_backoff(tmp_path: Path) -> None:
    codes = iter([429, 503])

    def handler(request: httpx.Request) -> httpx.Response:
        code = next(codes, 200)
        return _answer(request, "0x10") if code == 200 else httpx.Response(code)

    client = _mock(tmp_path / "c.yaml", handler, ["http://node-a"])
    assert client.head() == 16
    assert client.round_trips == 3


def test_fails_over_to_the_next_endpoint_and_stays_there(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        if request.url.host == "dead":
            raise httpx.ConnectError("refused")
        return _answer(request, "0x7a69")

    client = _mock(tmp_path / "c.yaml", handler, ["http://dead", "http://alive"])
    assert client.chain_id() == 31337
    assert client.chain_id() == 31337
    assert seen == ["dead", "alive", "alive"]


def test_all_endpoints_down_names_no_url(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out")

    client = _mock(
        tmp_path / "c.yaml",
        handler,
        ["http://key-abc.example", "http://key-def.example"],
    )
    with pytest.raises(RpcUnavailableError) as info:
        client.head()
    assert "key-abc" not in str(info.value)
    assert "endpoint #2" in str(info.value)


def test_json_rpc_error_in_a_batch_is_rejected(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(
            200,
            json=[
                {
                    "jsonrpc": "2.0",
                    "id": c["id"],
                    "error": {"code": -32000, "message": "boom"},
                }
                for c in body
            ],
        )

    client = _mock(tmp_path / "c.yaml", handler, ["http://node"])
    with pytest.raises(RpcRejectedError, match="boom"):
        client.block_headers([1, 2])


def test_get_logs_splits_ranges_the_node_finds_too_large(tmp_path: Path) -> None:
    ranges: list[tuple[int, int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls = body if isinstance(body, list) else [body]
        out = []
        for c in calls:
            flt = c["params"][0]
            lo, hi = int(flt["fromBlock"], 16), int(flt["toBlock"], 16)
            ranges.append((lo, hi))
            if hi - lo >= 25:
                out.append(
                    {
                        "jsonrpc": "2.0",
                        "id": c["id"],
                        "error": {
                            "code": -32005,
                            "message": "query returned more than 10000 results",
                        },
                    }
                )
            else:
                out.append({"jsonrpc": "2.0", "id": c["id"], "result": []})
        return httpx.Response(200, json=out if isinstance(body, list) else out[0])

    client = _mock(tmp_path / "c.yaml", handler, ["http://node"])
    assert client.token_transfers(0, 99, [_Tokens.usdc], None) == []
    answered = sorted(r for r in ranges if r[1] - r[0] < 25)
    assert answered[0][0] == 0
    assert answered[-1][1] == 99
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(answered))


def test_missing_block_receipts_method_falls_back_to_full_blocks(
    tmp_path: Path,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls = body if isinstance(body, list) else [body]
        method = calls[0]["method"]
        if method in ("eth_getBlockReceipts", "trace_block", "debug_traceBlockByHash"):
            err = {"code": -32601, "message": f"the method {method} does not exist"}
            return httpx.Response(
                200,
                json=[{"jsonrpc": "2.0", "id": c["id"], "error": err} for c in calls],
            )
        block = {"number": "0x1", "hash": "0x" + "1" * 64, "transactions": []}
        parent = {"parentHash": "0x" + "0" * 64, "timestamp": "0x1"}
        return _answer(request, block | parent)

    client = _mock(tmp_path / "c.yaml", handler, ["http://node"])
    found = client.transfers(1, 1, Watched(native={"0x" + "42" * 20}))
    assert (found.native, found.source) == ([], "blocks")
    assert "eth_getBlockReceipts" in client.rpc.preferred.limits.unsupported


def test_poa_header_with_long_extra_data_parses() -> None:
    block = {
        "number": "0x2a",
        "hash": "0x" + "ab" * 32,
        "parentHash": "0x" + "cd" * 32,
        "timestamp": "0x6553f100",
        "extraData": "0x"
        + "d8" * 32
        + "ee" * 65
        + "ff" * 512,  # vanity + seal + validators
        "miner": "0x" + "00" * 20,
    }
    header = parse.header(block)
    assert (header.number, header.hash, header.timestamp) == (
        42,
        "0x" + "ab" * 32,
        0x6553F100,
    )


def test_token_log_parsing_and_erc721_logs_skipped() -> None:
    log = {
        "address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
        "topics": [
            "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
            "0x" + "0" * 24 + "11" * 20,
            "0x" + "0" * 24 + "22" * 20,
        ],
        "data": "0x" + f"{10**30:064x}",
        "blockNumber": "0x5",
        "blockHash": "0x" + "aa" * 32,
        "transactionHash": "0x" + "bb" * 32,
        "logIndex": "0x3",
    }
    t = parse.token_transfer(log)
    assert (t.amount, t.log_index, t.block_number) == (10**30, 3, 5)
    assert t.token_address == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert (
        parse.token_transfer({**log, "topics": [*log["topics"], "0x" + "0" * 64]})
        is None
    )
    assert parse.token_transfer({**log, "data": "0x" + "0" * 64}) is None  # zero value
    # The transfers table keeps a log index in a 32-bit INTEGER (PostgreSQL would
    # refuse the row on every rerun): a larger one is the node's error.
    assert parse.token_transfer({**log, "logIndex": hex(2**31 - 1)}) is not None
    with pytest.raises(parse.Malformed, match="log index is out of range"):
        parse.token_transfer({**log, "logIndex": hex(2**31)})


def test_an_endpoint_refusing_the_key_fails_over(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "keyed":
            return httpx.Response(401)
        return _answer(request, "0x5")

    client = _mock(tmp_path / "c.yaml", handler, ["http://keyed", "http://open"])
    assert client.head() == 5


def test_checked_head_refuses_another_chain_in_one_round_trip(tmp_path: Path) -> None:
    from ctrip_cli.errors import ChainIdMismatchError

    client = _mock(tmp_path / "c.yaml", lambda r: _answer(r, "0x1"), ["http://mainnet"])
    with pytest.raises(ChainIdMismatchError, match="chain id 1"):
        client.checked_head()
    assert client.round_trips == 1
