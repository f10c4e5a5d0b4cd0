"""The RPC transport against scripted endpoints (httpx.MockTransport): how it learns
each limit, stays within a call budget, waits on rate limits, and never lets a node's
echo of the endpoint URL or a malformed answer through."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ctrip_cli.chain.evm import EvmChain
from ctrip_cli.chain.limits import RELEARN_AFTER_S, EndpointLimits, endpoint_key
from ctrip_cli.config import ChainConfig, NativeConfig
from ctrip_cli.errors import RpcRejectedError, RpcUnavailableError

Handler = Callable[[list[dict[str, Any]], bool], httpx.Response]
URL = "http://127.0.0.1:1/v3/SECRETKEY123?apikey=QUERYSECRET"


def _chain(
    handler: Handler, known: EndpointLimits | None = None, **cfg: Any
) -> tuple[EvmChain, list[float]]:
    naps: list[float] = []

    def respond(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return handler(
            body if isinstance(body, list) else [body], isinstance(body, list)
        )

    config = ChainConfig(
        name="local",
        chain_id=31337,
        rpc_urls=[SecretStr(URL)],
        native=NativeConfig(symbol="ETH"),
        **cfg,
    )
    chain = EvmChain.open(
        config,
        transport=httpx.MockTransport(respond),
        limits=None if known is None else {endpoint_key(URL): known},
        backoff_s=0.0,
        sleep=naps.append,
    )
    return chain, naps


def _ok(call: dict[str, Any], result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call["id"], "result": result}


def _block(call: dict[str, Any]) -> dict[str, Any]:
    n = int(call["params"][0], 16)
    return _ok(
        call,
        {
            "number": hex(n),
            "hash": "0x" + f"{n + 1:064x}",
            "parentHash": "0x" + f"{n:064x}",
            "timestamp": hex(1_700_000_000 + n),
        },
    )


def _reply(entries: Any, is_batch: bool) -> httpx.Response:
    return httpx.Response(200, json=entries if is_batch else entries[0])


def test_geth_batch_too_large_is_split_and_the_size_remembered() -> None:
    sizes: list[int] = []

    def geth(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        sizes.append(len(calls))
        if len(calls) > 10:  # rpc/handler.go: one error, the first call's id
            err = {"code": -32600, "message": "batch too large"}
            return httpx.Response(
                200, json=[{"jsonrpc": "2.0", "id": calls[0]["id"], "error": err}]
            )
        return _reply([_block(c) for c in calls], is_batch)

    chain, _ = _chain(geth)
    headers = chain.block_headers(range(100))
    assert [h.number for h in headers] == list(range(100))
    limits = chain.rpc.preferred.limits
    assert limits.max_batch is not None
    assert limits.max_batch <= 10
    assert limits.refused_batch is not None
    sizes.clear()
    chain.block_headers(range(100))
    assert max(sizes) <= 10  # learnt: no refusal the second time


def _geth_capped(cap: int, sizes: list[int]) -> Handler:
    def geth(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        sizes.append(len(calls))
        if len(calls) > cap:
            err = {"code": -32600, "message": "batch too large"}
            return httpx.Response(
                200, json=[{"jsonrpc": "2.0", "id": calls[0]["id"], "error": err}]
            )
        return _reply([_block(c) for c in calls], is_batch)

    return geth


def test_refusals_learnt_long_ago_are_tried_again_and_relearnt_if_still_true() -> None:
    """A limit learnt from a refusal is kept for a day, then forgotten: an endpoint
    whose plan got better is used fully again; one that still refuses is relearnt."""
    day_old = time.time() - RELEARN_AFTER_S - 60
    sizes: list[int] = []
    lifted = EndpointLimits(max_batch=5, refused_batch=6, learnt_at=day_old)
    chain, _ = _chain(_geth_capped(1_000, sizes), known=lifted)
    assert chain.rpc.limits_changed
    assert [h.number for h in chain.block_headers(range(100))] == list(range(100))
    assert max(sizes) > 5  # the old cap is gone
    kept = chain.rpc.learnt_limits()[endpoint_key(URL)]
    assert (kept.max_batch, kept.refused_batch, kept.learnt_at) == (None, None, None)

    sizes.clear()
    still = EndpointLimits(max_batch=5, refused_batch=6, learnt_at=day_old)
    chain, _ = _chain(_geth_capped(5, sizes), known=still)
    assert [h.number for h in chain.block_headers(range(100))] == list(range(100))
    kept = chain.rpc.learnt_limits()[endpoint_key(URL)]
    assert kept.max_batch is not None
    assert kept.max_batch <= 5
    assert kept.learnt_at is not None
    assert kept.learnt_at > day_old + 60

    sizes.clear()
    recent = time.time() - 3_600
    fresh = EndpointLimits(max_batch=5, refused_batch=6, learnt_at=recent)
    chain, _ = _chain(_geth_capped(1_000, sizes), known=fresh)
    chain.block_headers(range(100))
    assert max(sizes) <= 5  # learnt an hour ago: still trusted
    assert chain.rpc.learnt_limits()[endpoint_key(URL)].learnt_at == recent


def test_limits_kept_without_a_date_are_dated_on_the_next_pass() -> None:
    undated = EndpointLimits(batching=False)
    chain, _ = _chain(lambda calls, b: _reply([_block(c) for c in calls], b), undated)
    assert chain.rpc.limits_changed
    kept = chain.rpc.learnt_limits()[endpoint_key(URL)]
    assert kept.batching is False
    assert kept.learnt_at is not None
    assert abs(kept.learnt_at - time.time()) < 60


def test_erigon_named_batch_limit_is_taken_at_its_word() -> None:
    def erigon(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        if len(calls) > 7:
            err = {
                "code": -32000,
                "message": f"batch limit 7 exceeded: {len(calls)} requests given",
            }
            return httpx.Response(
                200, json={"jsonrpc": "2.0", "id": None, "error": err}
            )
        return _reply([_block(c) for c in calls], is_batch)

    chain, _ = _chain(erigon)
    chain.block_headers(range(30))
    assert chain.rpc.preferred.limits.max_batch == 7


def test_response_too_large_resends_only_the_unanswered_calls() -> None:
    asked: list[int] = []

    def capped(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        asked.extend(int(c["params"][0], 16) for c in calls)
        out, size = [], 0
        for c in calls:
            entry = _block(c)
            size += len(json.dumps(entry))
            if size > 1_000:  # geth: every call after the cap gets -32003
                entry = {
                    "jsonrpc": "2.0",
                    "id": c["id"],
                    "error": {"code": -32003, "message": "response too large"},
                }
            out.append(entry)
        return _reply(out, is_batch)

    chain, _ = _chain(capped)
    headers = chain.block_headers(range(40))
    assert [h.number for h in headers] == list(range(40))
    assert len(asked) < 2 * 40  # answered calls are never asked again
    assert chain.rpc.preferred.limits.max_response_bytes is not None


def test_no_batching_means_single_calls() -> None:
    def single_only(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        if is_batch and len(calls) > 1:
            err = {"code": -32600, "message": "batch requests are disabled"}
            return httpx.Response(
                200, json={"jsonrpc": "2.0", "id": None, "error": err}
            )
        return _reply([_block(c) for c in calls], is_batch)

    chain, _ = _chain(single_only)
    assert len(chain.block_headers(range(12))) == 12
    assert chain.rpc.preferred.limits.batching is False


@pytest.mark.parametrize("style", ["seconds", "date"])
def test_429_waits_as_asked_and_never_fails_the_first_time(style: str) -> None:
    answered = {"n": 0}

    def limited(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        answered["n"] += 1
        if answered["n"] <= 2:
            later = email.utils.formatdate(time.time() + 3, usegmt=True)
            return httpx.Response(
                429, headers={"Retry-After": "2" if style == "seconds" else later}
            )
        return _reply([_ok(c, "0x10") for c in calls], is_batch)

    chain, naps = _chain(limited)
    assert chain.head() == 16
    assert len(naps) == 2
    assert all(1.0 <= n <= 4.0 for n in naps), naps


def test_rate_limit_waits_stay_within_the_chains_budget() -> None:
    """`rpc_rate_wait_s` bounds the waits of a pass: a far-off Retry-After is waited up
    to it and tried once more; a node that keeps refusing ends the pass."""
    answered = {"n": 0}

    def once(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        answered["n"] += 1
        if answered["n"] == 1:
            return httpx.Response(429, headers={"Retry-After": "1000000000"})
        return _reply([_ok(c, "0x10") for c in calls], is_batch)

    chain, naps = _chain(once, rpc_rate_wait_s=2.5)
    assert chain.head() == 16
    assert naps == [2.5]

    chain, naps = _chain(
        lambda calls, is_batch: httpx.Response(429, headers={"Retry-After": "1"}),
        rpc_rate_wait_s=2.5,
    )
    with pytest.raises(RpcUnavailableError, match="kept rate-limiting"):
        chain.head()
    assert sum(naps) <= 2.5
    assert len(naps) == 2, naps


def test_per_call_rate_limit_errors_in_a_200_answer_are_retried() -> None:
    turn = {"n": 0}

    def gateway(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        turn["n"] += 1
        out = []
        for i, c in enumerate(calls):
            if turn["n"] == 1 and i % 2:
                err = {"code": -32029, "message": "Rate limit exceeded"}
                out.append({"jsonrpc": "2.0", "id": c["id"], "error": err})
            else:
                out.append(_block(c))
        return _reply(out, is_batch)

    chain, naps = _chain(gateway)
    assert [h.number for h in chain.block_headers(range(10))] == list(range(10))
    assert naps  # it slowed down


def test_the_call_budget_counts_calls_not_requests() -> None:
    stamps: list[tuple[float, int]] = []
    clock = {"t": 0.0}

    def node(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        stamps.append((time.monotonic(), len(calls)))
        return _reply([_block(c) for c in calls], is_batch)

    chain, _ = _chain(node, rpc_max_calls_per_s=25)
    chain.rpc._budget.sleep = time.sleep  # type: ignore[union-attr]  # real waits
    clock["t"] = time.monotonic()
    chain.block_headers(range(60))
    took = time.monotonic() - clock["t"]
    assert max(n for _, n in stamps) <= 25
    for t, _ in stamps:
        window = sum(n for u, n in stamps if t <= u < t + 1.0)
        assert window <= 25
    assert took >= 1.0  # 60 calls at 25 a second cannot go faster


def test_a_node_echoing_the_url_never_reaches_the_message() -> None:
    def echo(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        err = {
            "code": -32000,
            "message": f"bad key for {URL} (path /v3/SECRETKEY123, apikey=QUERYSECRET)",
        }
        return _reply(
            [{"jsonrpc": "2.0", "id": c["id"], "error": err} for c in calls], is_batch
        )

    chain, _ = _chain(echo)
    with pytest.raises(RpcRejectedError) as info:
        chain.head()
    text = str(info.value)
    assert "SECRETKEY123" not in text
    assert "QUERYSECRET" not in text
    assert "endpoint #1" in text


@pytest.mark.parametrize(
    "bad",
    [
        None,
        5,
        "0xzz",
        "banana",
        {"number": "0x1"},
        {
            "number": "0x1",
            "hash": "0x12",
            "parentHash": "0x" + "0" * 64,
            "timestamp": "0x1",
        },
    ],
)
def test_garbage_answers_are_rejected_by_endpoint_never_a_traceback(bad: Any) -> None:
    def garbage(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        return _reply([_ok(c, bad) for c in calls], is_batch)

    chain, _ = _chain(garbage)
    with pytest.raises(RpcRejectedError, match=r"endpoint #1|not found"):
        chain.block_headers([1])
    if bad is not None:
        with pytest.raises(RpcRejectedError, match="endpoint #1"):
            chain.head()


def test_logs_range_cap_is_learnt_from_the_refusal() -> None:
    ranges: list[tuple[int, int]] = []

    def capped(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        out = []
        for c in calls:
            f = c["params"][0]
            lo, hi = int(f["fromBlock"], 16), int(f["toBlock"], 16)
            ranges.append((lo, hi))
            if hi - lo + 1 > 5:
                err = {
                    "code": -32615,
                    "message": "eth_getLogs is limited to a 5 range, upgrade from discover plan to increase the limit",
                }
                out.append({"jsonrpc": "2.0", "id": c["id"], "error": err})
            else:
                out.append(_ok(c, []))
        return httpx.Response(413, json=out if is_batch else out[0])

    chain, _ = _chain(capped)
    token = "0x" + "11" * 20
    assert chain.token_transfers(0, 99, [token], None) == []
    assert chain.rpc.preferred.limits.logs_max_range == 5
    ranges.clear()
    chain.token_transfers(100, 199, [token], None)
    assert all(hi - lo + 1 <= 5 for lo, hi in ranges)  # no refusal the second time
    assert len(ranges) == 20


def test_logs_refused_even_for_one_block_fall_back_to_receipts() -> None:
    def bsc(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        out = []
        for c in calls:
            if c["method"] == "eth_getLogs":
                err = {"code": -32005, "message": "limit exceeded"}
                out.append({"jsonrpc": "2.0", "id": c["id"], "error": err})
            elif c["method"] == "eth_getBlockTransactionCountByNumber":
                out.append(_ok(c, "0x0"))  # the blocks really are empty
            else:
                out.append(_ok(c, []))  # eth_getBlockReceipts: empty blocks
        return _reply(out, is_batch)

    from ctrip_cli.chain.client import Watched

    chain, _ = _chain(bsc)
    found = chain.transfers(
        0, 7, Watched(tokens=["0x" + "11" * 20], token_recipients={"0x" + "22" * 20})
    )
    assert found.source == "receipts"
    assert chain.rpc.preferred.limits.logs_refused is True


@pytest.mark.parametrize(
    ("logs_per_receipt", "expected"), [(0, "receipts"), (40, "blocks")]
)
def test_auto_native_read_measures_both_and_takes_the_lighter(
    logs_per_receipt: int, expected: str
) -> None:
    to = "0x" + "42" * 20
    log = {
        "address": "0x" + "11" * 20,
        "topics": ["0x" + "ab" * 32] * 3,
        "data": "0x" + "00" * 64,
    }

    def node(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        out = []
        for c in calls:
            if c["method"] == "eth_getBlockReceipts":
                n = c["params"][0]
                receipt = {"to": to, "status": "0x0", "logs": [log] * logs_per_receipt,
                           "blockNumber": n, "blockHash": "0x" + f"{int(n, 16) + 1:064x}"}  # fmt: skip
                out.append(_ok(c, [receipt] * 5))
            elif c["method"] == "eth_getBlockByNumber":
                tx = {
                    "to": to,
                    "value": "0x0",
                    "hash": "0x" + "cd" * 32,
                    "input": "0x" + "00" * 200,
                }
                out.append(_ok(c, {**_block(c)["result"], "transactions": [tx] * 5}))
            else:
                out.append(_ok(c, []))
        return _reply(out, is_batch)

    from ctrip_cli.chain.client import Watched

    chain, _ = _chain(node, native_internal="off")
    found = chain.transfers(1, 4, Watched(native={to}))
    assert expected in found.source.split("+")
    assert ({"receipts", "blocks"} - {expected}).isdisjoint(found.source.split("+"))
    measured = chain.rpc.preferred.limits.bytes_per_call
    assert {"eth_getBlockReceipts", "eth_getBlockByNumber/full"} <= measured.keys()


@pytest.mark.parametrize(
    ("native_read", "missing"),
    [("blocks", "eth_getTransactionReceipt"), ("receipts", "eth_getTransactionByHash")],
)
def test_a_transaction_the_node_cannot_find_fails_the_read_never_skips_it(
    native_read: str, missing: str
) -> None:
    """A lagging backend (or an index still being built) answers null for a receipt
    or transaction of a block it served: the read fails, so the cursor cannot pass
    the payment in it."""
    from ctrip_cli.chain.client import Watched

    to = "0x" + "42" * 20
    tx_hash = "0x" + "cd" * 32

    def node(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        out = []
        for c in calls:
            n = c["params"][0] if c["params"] else "0x0"
            block_hash = "0x" + f"{int(n, 16) + 1:064x}" if n.startswith("0x") else n
            tx = {"to": to, "value": "0xde0b6b3a7640000", "hash": tx_hash}
            receipt = {"to": to, "from": "0x" + "11" * 20, "status": "0x1",
                       "logs": [], "transactionHash": tx_hash, "blockNumber": n,
                       "blockHash": block_hash}  # fmt: skip
            if c["method"] == missing:
                out.append(_ok(c, None))
            elif c["method"] == "eth_getBlockByNumber":
                out.append(_ok(c, {**_block(c)["result"], "transactions": [tx]}))
            elif c["method"] == "eth_getBlockReceipts":
                out.append(_ok(c, [receipt]))
            else:
                out.append(_ok(c, []))
        return _reply(out, is_batch)

    chain, _ = _chain(node, native_read=native_read, native_internal="off")
    with pytest.raises(RpcRejectedError, match="the node is lagging"):
        chain.transfers(5, 5, Watched(native={to}))


def _headers_with_rate_limits(refuse: Callable[[int, int], bool]) -> Handler:
    """Block headers, with the calls `refuse(request number, position)` picks refused
    by a per-call rate limit (-32005 in a 200 answer)."""
    requests = {"n": 0}

    def node(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        requests["n"] += 1
        out = []
        for pos, c in enumerate(calls):
            if refuse(requests["n"], pos):
                err = {"code": -32005, "message": "rate limit exceeded"}
                out.append({"jsonrpc": "2.0", "id": c["id"], "error": err})
            else:
                out.append(_block(c))
        return _reply(out, is_batch)

    return node


def test_one_answer_with_many_rate_limited_calls_costs_one_wait() -> None:
    chain, naps = _chain(
        _headers_with_rate_limits(lambda req, pos: req == 1 and pos % 2 == 0)
    )
    assert [h.number for h in chain.block_headers(range(40))] == list(range(40))
    assert len(naps) == 1, naps


def test_parallel_batches_refused_together_wait_together() -> None:
    """Four batches in flight, all told to wait 10 s: the pass waits 10 s once, not
    40 s of a 30 s budget."""
    refused: set[int] = set()

    def node(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        first = calls[0]["params"][0]
        if first not in refused:
            refused.add(first)
            return httpx.Response(429, headers={"Retry-After": "10"})
        return _reply([_block(c) for c in calls], is_batch)

    chain, naps = _chain(node)
    chain.rpc._sleep = lambda s: (naps.append(s), time.sleep(s / 20))  # type: ignore[assignment]
    chain.rpc.preferred.limits.bytes_per_call["eth_getBlockByNumber"] = 400_000
    assert [h.number for h in chain.block_headers(range(40))] == list(range(40))
    assert len(refused) >= 4
    assert chain.rpc._rate_waited_s <= 20, naps


def _traced_node(trace: Callable[[dict[str, Any]], dict[str, Any]]) -> Handler:
    """A block of one transaction (paying nobody watched) whose traces `trace` answers."""
    tx_hash = "0x" + "cd" * 32

    def node(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        out = []
        for c in calls:
            if c["method"] in ("trace_block", "debug_traceBlockByHash"):
                out.append(trace(c))
            elif c["method"] == "eth_getBlockByNumber":
                tx = {"to": "0x" + "77" * 20, "value": "0x1", "hash": tx_hash}
                out.append(_ok(c, {**_block(c)["result"], "transactions": [tx]}))
            else:
                out.append(_ok(c, []))
        return _reply(out, is_batch)

    return node


@pytest.mark.parametrize(
    "message",
    [
        "historical state not available in path scheme yet",
        "required historical state unavailable (reexec=128)",
        "state 0x12ab is not available, pruned",
    ],
)
def test_a_block_the_node_cannot_trace_is_left_to_reconcile_never_a_missing_method(
    message: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A node that cannot trace old blocks (pruned or path-scheme state) has the trace
    methods all the same: under `auto` the range is left to reconcile with a warning
    and nothing is remembered; under `traces` the pass fails and says why."""
    from ctrip_cli.chain.client import Watched
    from ctrip_cli.errors import TracesUnavailableError

    def refuse(c: dict[str, Any]) -> dict[str, Any]:
        err = {"code": -32000, "message": message}
        return {"jsonrpc": "2.0", "id": c["id"], "error": err}

    watched = Watched(native={"0x" + "42" * 20})
    chain, _ = _chain(_traced_node(refuse), native_read="blocks")
    found = chain.transfers(5, 5, watched)
    assert "traces" not in found.source
    assert chain.rpc.preferred.limits.unsupported == []
    assert "left to `ctrip reconcile`" in caplog.text

    chain, _ = _chain(
        _traced_node(refuse), native_read="blocks", native_internal="traces"
    )
    with pytest.raises(TracesUnavailableError, match="cannot trace #5-#5"):
        chain.transfers(5, 5, watched)


def test_traces_of_fewer_transactions_than_the_block_holds_fail_the_read() -> None:
    """A lagging backend answers `[]` for a block it lacks: never "no internal
    transfers", or the cursor would pass them."""
    from ctrip_cli.chain.client import Watched

    chain, _ = _chain(_traced_node(lambda c: _ok(c, [])), native_read="blocks")
    with pytest.raises(RpcRejectedError, match="traced 0 of the 1 transactions"):
        chain.transfers(5, 5, Watched(native={"0x" + "42" * 20}))


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (-32601, "the method trace_block does not exist/is not available"),
        (-32600, "Unsupported method: trace_block. See available methods"),
        (-32007, "trace_block is not available on the Free tier"),
    ],
)
def test_a_refusal_naming_the_method_is_a_missing_method(
    code: int, message: str
) -> None:
    from ctrip_cli.chain.limits import Kind, classify

    assert classify("trace_block", code, message) is Kind.METHOD_MISSING
    assert (
        classify("trace_block", -32000, "historical state not available") is Kind.OTHER
    )


def test_a_block_hash_answered_for_another_block_is_refused() -> None:
    """block_hashes feeds the cursor check, the reorg search and the traces read by
    hash: an answer for another number never passes as the asked block's hash."""

    def off_by_one(calls: list[dict[str, Any]], is_batch: bool) -> httpx.Response:
        return _reply(
            [
                _block({**c, "params": [hex(int(c["params"][0], 16) + 1)]})
                for c in calls
            ],
            is_batch,
        )

    chain, _ = _chain(off_by_one)
    with pytest.raises(RpcRejectedError, match="answered block #8 for #7"):
        chain.block_hashes([7])


def test_a_key_in_the_host_name_is_masked_too() -> None:
    from ctrip_cli.chain.rpc import RpcTransport

    key = "k7f3a9c2e1b04d68a5f2"
    config = ChainConfig(
        name="local",
        chain_id=31337,
        rpc_urls=[SecretStr(f"https://{key}.mainnet.rpc.example/")],
        native=NativeConfig(symbol="ETH"),
    )
    rpc = RpcTransport(
        config, transport=httpx.MockTransport(lambda r: httpx.Response(500))
    )
    text = rpc.scrub(f"unknown project {key} on mainnet")
    assert key not in text
    assert "mainnet" in text
    rpc.close()
