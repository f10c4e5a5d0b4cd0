"""The provider emulator answers as each profile's source says, against a real anvil."""

from __future__ import annotations

import email.utils
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from scripts.emulator import Emulator, Limits, preset
from tests.evm import ANVIL_ACCOUNTS, REPO_ROOT, TRANSFER_TOPIC, Anvil, mint
from tests.evm_fixtures import TestTokens

pytestmark = pytest.mark.evm


def _calls(method: str, params: list[Any], n: int, first_id: int = 1) -> list[Any]:
    return [
        {"jsonrpc": "2.0", "id": first_id + i, "method": method, "params": params}
        for i in range(n)
    ]


def _one(method: str, *params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params)}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture
def chain(anvil_snapshot: Anvil, tokens: TestTokens) -> dict[str, int]:
    """Eight blocks, each with one USDC Transfer log; returns their numbers."""
    first = anvil_snapshot.block_number() + 1
    for i in range(8):
        mint(anvil_snapshot, tokens.usdc, ANVIL_ACCOUNTS[2], i + 1)
    return {"first": first, "last": anvil_snapshot.block_number()}


def _logs_filter(tokens: TestTokens, lo: int, hi: int) -> dict[str, Any]:
    return {
        "fromBlock": hex(lo),
        "toBlock": hex(hi),
        "address": tokens.usdc,
        "topics": [TRANSFER_TOPIC],
    }


def test_unlimited_passes_through_and_counts(anvil: Anvil, http: httpx.Client) -> None:
    with Emulator(anvil.url) as emu:
        batch = [
            *_calls("eth_getBlockByNumber", ["0x0", False], 3),
            _one("eth_chainId"),
        ]
        reply = http.post(emu.url, json=batch)
        direct = http.post(anvil.url, json=batch).json()
        assert reply.status_code == 200
        assert reply.json() == direct
        assert emu.calls == {"eth_getBlockByNumber": 3, "eth_chainId": 1}
        assert emu.requests == {"eth_getBlockByNumber": 1, "eth_chainId": 1}
        assert emu.http_requests == 1
        assert emu.total_bytes == len(reply.content) - 2 - 3  # "[", "]", commas
        assert not emu.limited
        stats = http.get(emu.url + "/_emulator/stats").json()
        assert stats["total_calls"] == 4
        emu.reset()
        assert emu.total_calls == 0
        assert emu.http_requests == 0
        assert not emu.response_bytes


def test_geth_refuses_a_batch_over_1000_calls_with_one_error(
    anvil: Anvil, http: httpx.Client
) -> None:
    with Emulator(anvil.url, "geth") as emu:
        over = http.post(emu.url, json=_calls("eth_blockNumber", [], 1001, first_id=40))
        assert over.json() == [
            {
                "jsonrpc": "2.0",
                "id": 40,
                "error": {"code": -32600, "message": "batch too large"},
            }
        ]
        at = http.post(emu.url, json=_calls("eth_blockNumber", [], 1000)).json()
        assert len(at) == 1000
        assert all("result" in e for e in at)
        assert emu.limited == {"batch_too_large": 1001}


def test_geth_answers_response_too_large_past_the_byte_cap(
    anvil: Anvil, http: httpx.Client
) -> None:
    one = len(json.dumps(anvil.get_block(0, True), separators=(",", ":")))
    with Emulator(anvil.url, "geth", max_batch_response_bytes=int(one * 1.5)) as emu:
        batch = _calls("eth_getBlockByNumber", ["0x0", True], 5)
        entries = http.post(emu.url, json=batch).json()
        # geth keeps the answer that crossed the cap, then refuses every other call.
        assert [("result" in e) for e in entries] == [True, True, False, False, False]
        assert entries[2] == {
            "jsonrpc": "2.0",
            "id": 3,
            "error": {"code": -32003, "message": "response too large"},
        }
        single = http.post(emu.url, json=batch[0]).json()
        assert "result" in single  # one call is never capped
        assert emu.limited == {"response_too_large": 3}


def test_hosted_plan_refuses_101_calls_as_erigon_does(
    anvil: Anvil, http: httpx.Client
) -> None:
    with Emulator(anvil.url, "hosted") as emu:
        over = http.post(emu.url, json=_calls("eth_blockNumber", [], 101))
        assert over.status_code == 200
        assert over.json() == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {
                "code": -32000,
                "message": "batch limit 100 exceeded: 101 requests given",
            },
        }
        assert (
            len(http.post(emu.url, json=_calls("eth_blockNumber", [], 100)).json())
            == 100
        )


def test_hosted_413_variant(anvil: Anvil, http: httpx.Client) -> None:
    with Emulator(anvil.url, "hosted-413") as emu:
        over = http.post(emu.url, json=_calls("eth_blockNumber", [], 101))
        assert over.status_code == 413
        assert "413 Request Entity Too Large" in over.text
        assert emu.limited["batch_too_large"] == 101


def test_hosted_logs_caps_by_range_and_by_count(
    anvil: Anvil, tokens: TestTokens, chain: dict[str, int], http: httpx.Client
) -> None:
    lo, hi = chain["first"], chain["last"]
    with Emulator(anvil.url, "hosted", logs_max_blocks=4, logs_max_results=2) as emu:
        wide = http.post(
            emu.url, json=_one("eth_getLogs", _logs_filter(tokens, lo, hi))
        )
        assert wide.json()["error"] == {
            "code": -32602,
            "message": "query exceeds max block range 4",
        }
        many = http.post(
            emu.url, json=_one("eth_getLogs", _logs_filter(tokens, lo, lo + 3))
        )
        assert many.json()["error"] == {
            "code": -32005,
            "message": "query returned more than 2 results",
        }
        ok = http.post(
            emu.url, json=_one("eth_getLogs", _logs_filter(tokens, lo, lo + 1))
        )
        assert len(ok.json()["result"]) == 2
        assert emu.limited == {"logs_range": 1, "logs_results": 1}


def test_quicknode_free_allows_5_blocks_and_answers_413_past_them(
    anvil: Anvil, tokens: TestTokens, chain: dict[str, int], http: httpx.Client
) -> None:
    lo = chain["first"]
    with Emulator(anvil.url, "quicknode-free") as emu:
        five = http.post(
            emu.url, json=_one("eth_getLogs", _logs_filter(tokens, lo, lo + 4))
        )
        assert five.status_code == 200
        assert len(five.json()["result"]) == 5
        six = http.post(
            emu.url, json=_one("eth_getLogs", _logs_filter(tokens, lo, lo + 5))
        )
        assert six.status_code == 413
        error = six.json()["error"]
        assert error["code"] == -32615
        assert error["message"].startswith("eth_getLogs is limited to a 5 range")


def test_alchemy_wording_names_a_range_that_works(
    anvil: Anvil, tokens: TestTokens, chain: dict[str, int], http: httpx.Client
) -> None:
    lo, hi = chain["first"], chain["last"]
    with Emulator(anvil.url, "alchemy-free", logs_max_blocks=3) as emu:
        reply = http.post(
            emu.url, json=_one("eth_getLogs", _logs_filter(tokens, lo, hi))
        )
        assert reply.json()["error"] == {
            "code": -32600,
            "message": "You can make eth_getLogs requests with up to a 3 block range. "
            f"Based on your parameters, this block range should work: "
            f"[{hex(lo)}, {hex(lo + 2)}]",
        }


def test_logs_range_resolves_latest_against_the_head(
    anvil: Anvil, tokens: TestTokens, chain: dict[str, int], http: httpx.Client
) -> None:
    flt = {"fromBlock": hex(chain["first"]), "address": tokens.usdc}  # toBlock: latest
    with Emulator(anvil.url, "quicknode-free") as emu:
        assert http.post(emu.url, json=_one("eth_getLogs", flt)).status_code == 413
        emu.limits = emu.limits.replace(logs_max_blocks=8)
        assert (
            len(http.post(emu.url, json=_one("eth_getLogs", flt)).json()["result"]) == 8
        )


def test_public_node_has_no_block_receipts(anvil: Anvil, http: httpx.Client) -> None:
    with Emulator(anvil.url, "public") as emu:
        batch = [
            _one("eth_getBlockReceipts", "0x0"),
            {**_one("eth_blockNumber"), "id": 8},
        ]
        entries = http.post(emu.url, json=batch).json()
        assert entries[0]["error"] == {
            "code": -32601,
            "message": "the method eth_getBlockReceipts does not exist/is not available",
        }
        assert "result" in entries[1]
        assert emu.limited_methods == {"eth_getBlockReceipts": 1}


def test_public_node_answers_429_with_retry_after_seconds(
    anvil: Anvil, http: httpx.Client
) -> None:
    with Emulator(anvil.url, "public", rate_limit_calls_per_s=5) as emu:
        assert (
            http.post(emu.url, json=_calls("eth_blockNumber", [], 5)).status_code == 200
        )
        refused = http.post(emu.url, json=_one("eth_blockNumber"))
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["code"] == -32029
        time.sleep(int(refused.headers["Retry-After"]))
        assert http.post(emu.url, json=_one("eth_blockNumber")).status_code == 200
        assert emu.limited == {"rate_limited": 1}
        # A batch larger than the whole budget can never pass: the client must split.
        assert (
            http.post(emu.url, json=_calls("eth_blockNumber", [], 6)).status_code == 429
        )


def test_public_node_retry_after_as_an_http_date(
    anvil: Anvil, http: httpx.Client
) -> None:
    with Emulator(anvil.url, "public-date", rate_limit_calls_per_s=1) as emu:
        http.post(emu.url, json=_one("eth_blockNumber"))
        refused = http.post(emu.url, json=_one("eth_blockNumber"))
        assert refused.status_code == 429
        when = email.utils.parsedate_to_datetime(refused.headers["Retry-After"])
        assert 0 < when.timestamp() - time.time() <= 3


def test_gateway_answers_200_with_an_error_per_call_over_budget(
    anvil: Anvil, http: httpx.Client
) -> None:
    with Emulator(anvil.url, "gateway", rate_limit_calls_per_s=3) as emu:
        reply = http.post(emu.url, json=_calls("eth_blockNumber", [], 5))
        assert reply.status_code == 200
        entries = reply.json()
        assert [("result" in e) for e in entries] == [True, True, True, False, False]
        assert entries[4]["error"] == {"code": -32005, "message": "limit exceeded"}
        assert entries[4]["id"] == 5
        emu.limits = emu.limits.replace(
            rate_limit_code=-32029, rate_limit_message="Rate limit exceeded"
        )
        again = http.post(emu.url, json=_one("eth_blockNumber")).json()
        assert again["error"] == {"code": -32029, "message": "Rate limit exceeded"}


def test_no_batching_refuses_two_calls(anvil: Anvil, http: httpx.Client) -> None:
    with Emulator(anvil.url, "no-batch") as emu:
        two = http.post(emu.url, json=_calls("eth_blockNumber", [], 2)).json()
        assert two == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32600, "message": "batch requests are disabled"},
        }
        assert "result" in http.post(emu.url, json=_one("eth_blockNumber")).json()
        assert (
            len(http.post(emu.url, json=_calls("eth_blockNumber", [], 1)).json()) == 1
        )
        emu.limits = emu.limits.replace(no_batching="optimism")
        other = http.post(emu.url, json=_calls("eth_blockNumber", [], 2)).json()
        assert other["error"] == {"code": -32700, "message": "parse error"}


def test_bsc_public_refuses_eth_getlogs_even_for_one_block(
    anvil: Anvil, tokens: TestTokens, chain: dict[str, int], http: httpx.Client
) -> None:
    lo = chain["first"]
    with Emulator(anvil.url, "bsc-public") as emu:
        reply = http.post(
            emu.url, json=_one("eth_getLogs", _logs_filter(tokens, lo, lo))
        )
        assert reply.json()["error"] == {"code": -32005, "message": "limit exceeded"}
        receipts = http.post(emu.url, json=_one("eth_getBlockReceipts", hex(lo))).json()
        assert receipts["result"][0]["logs"]  # the logs are there, in the receipts


def test_lagging_backend_answers_empty_logs_for_blocks_it_has_headers_of(
    anvil: Anvil, tokens: TestTokens, chain: dict[str, int], http: httpx.Client
) -> None:
    last = chain["last"]
    flt = _logs_filter(tokens, last, last)
    with Emulator(anvil.url, "lagging") as emu:
        answers = [
            http.post(emu.url, json=_one("eth_getLogs", flt)).json()["result"]
            for _ in range(4)
        ]
        assert [len(a) for a in answers] == [1, 0, 1, 0]
        header = http.post(emu.url, json=_one("eth_getBlockByNumber", hex(last), False))
        assert header.json()["result"]["logsBloom"] != "0x" + "0" * 512
        assert emu.limited == {"lagging_logs": 2}
        old = _logs_filter(tokens, chain["first"], chain["first"])
        assert all(
            len(http.post(emu.url, json=_one("eth_getLogs", old)).json()["result"]) == 1
            for _ in range(2)
        )
        emu.limits = emu.limits.replace(lagging_logs=False)
        assert all(
            len(http.post(emu.url, json=_one("eth_getLogs", flt)).json()["result"]) == 1
            for _ in range(2)
        )


def test_cut_off_body(anvil: Anvil, http: httpx.Client) -> None:
    batch = _calls("eth_getBlockByNumber", ["0x0", True], 20)
    with Emulator(anvil.url, "truncated", truncate_after_bytes=1000) as emu:
        with pytest.raises(httpx.RemoteProtocolError):
            http.post(emu.url, json=batch)
        assert "result" in http.post(emu.url, json=_one("eth_chainId")).json()
        emu.limits = emu.limits.replace(truncate="short")
        short = http.post(emu.url, json=batch)
        assert len(short.content) == 1000
        with pytest.raises(json.JSONDecodeError):
            short.json()
        assert emu.limited == {"truncated": 2}


def test_latency_combines_with_any_profile(anvil: Anvil, http: httpx.Client) -> None:
    with Emulator(anvil.url, "no-batch", latency_s=0.2) as emu:
        began = time.monotonic()
        two = http.post(emu.url, json=_calls("eth_blockNumber", [], 2)).json()
        assert time.monotonic() - began >= 0.2
        assert two["error"]["message"] == "batch requests are disabled"
    assert preset("geth").replace(latency_s=0.05).max_batch_calls == 1000


def test_limits_reject_unknown_names_and_profiles(anvil: Anvil) -> None:
    with pytest.raises(TypeError):
        Limits().replace(max_batch=3)
    with pytest.raises(ValueError, match="unknown profile 'gteh'"):
        Emulator(anvil.url, "gteh")


def test_calls_in_window(anvil: Anvil) -> None:
    emu = Emulator(anvil.url)
    try:
        emu.call_times = [0.0, 0.1, 0.5, 0.99, 1.0, 1.5, 3.0]
        assert emu.max_calls_in_window(1.0) == 4  # 0.0-0.99; 1.0 opens a new second
        assert emu.calls_per_second() == [4, 2, 0, 1]
    finally:
        emu._server.server_close()


def test_cli_runs_a_profile_with_overrides(anvil: Anvil, http: httpx.Client) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scripts.emulator",
            "--upstream",
            anvil.url,
            "--profile",
            "geth",
            "--set",
            "max_batch_calls=2",
            "--latency-s",
            "0.01",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        started = json.loads(proc.stdout.readline())
        url = started["url"]
        assert started["limits"]["max_batch_calls"] == 2
        assert started["limits"]["latency_s"] == 0.01
        over = http.post(url, json=_calls("eth_blockNumber", [], 3)).json()
        assert over[0]["error"]["message"] == "batch too large"
        stats = http.get(url + "/_emulator/stats").json()
        assert stats["limited"] == {"batch_too_large": 3}
        assert http.get(url + "/_emulator/reset").json()["total_calls"] == 0
    finally:
        proc.terminate()
        proc.wait(5)
    assert proc.returncode == 0
