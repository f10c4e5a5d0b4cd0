"""Every pass against hostile and broken nodes, through the CLI as an operator runs it:
anvil behind a JSON-RPC server on 127.0.0.1 that lies (wrong or missing ids, garbage
values, blocks and receipts of other blocks, HTML, slow or huge bodies, rate limits and
refusals that never end, errors that echo the endpoint's URL and credentials).

For each pass: the exit code is 0, 1 or 2 (CONTRACT.md), never a traceback; nothing is
half-written; no payment is missed or double-counted once the endpoint behaves again;
no part of the URL appears in stdout, stderr, job_runs or status; the pass ends in
bounded time.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import TEST_MNEMONIC_OWN
from tests.evm import ANVIL_ACCOUNTS, Anvil, mint, send_native, token_transfer
from tests.evm_fixtures import TestTokens
from tests.hostile.hostile_node import (
    HostileNode,
    error_reply,
    send_bytes,
    send_json,
)

pytestmark = [pytest.mark.e2e, pytest.mark.evm]
ETH = 10**18
PAYER = ANVIL_ACCOUNTS[1]
TREASURY = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
# Parts of the endpoint URL that are secrets: a provider key in the path, a query key,
# and basic-auth credentials.
PATH_KEY = "pathkeyS3CR3Tabcdef0123"
QUERY_KEY = "queryS3CR3Tq9w8e7r6"
USER, PASSWORD = "rpcuser", "pw-S3CR3T-77"
SECRETS = (
    PATH_KEY,
    QUERY_KEY,
    PASSWORD,
    base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
)


RECEIPTS = "    native_read: receipts"
BLOCKS = "    native_read: blocks"


@dataclass
class Done:
    rc: int
    out: str
    err: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.out)

    def clean_failure(self) -> None:
        """Exit 1 with a one-line reason, no traceback."""
        assert self.rc == 1, (self.rc, self.out, self.err)
        assert "Traceback" not in self.err, self.err
        assert self.err.strip(), "a failing pass says why"


@dataclass
class World:
    anvil: Anvil
    tokens: TestTokens
    node: HostileNode
    env: dict[str, str]
    db_url: str
    tmp: Path
    start: int

    def ctrip(self, *args: str, timeout_s: float = 120) -> Done:
        started = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "ctrip_cli", *args],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else ""
            return Done(-9, out, "(killed: no end in sight)", timeout_s)
        return Done(
            done.returncode, done.stdout, done.stderr, time.monotonic() - started
        )

    def scan(self, timeout_s: float = 120) -> Done:
        return self.ctrip("scan", "--chain", "local", "--json", timeout_s=timeout_s)

    def create(self, asset: str, amount: str) -> dict[str, Any]:
        done = self.ctrip(
            "payments", "create", "--chain", "local", "--asset", asset,
            "--amount", amount, "--json",
        )  # fmt: skip
        assert done.rc == 0, done
        created: dict[str, Any] = done.json()
        return created

    def pay_native(self, amount: str, wei: int) -> dict[str, Any]:
        p = self.create("ETH", amount)
        send_native(self.anvil, PAYER, p["address"], wei)
        return p

    def pay_usdc(self, amount: str, units: int) -> dict[str, Any]:
        p = self.create("USDC", amount)
        token_transfer(self.anvil, self.tokens.usdc, PAYER, p["address"], units)
        return p

    def query(self, sql: str, **params: Any) -> list[Any]:
        engine = sa.create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params).all())
        finally:
            engine.dispose()

    def payment(self, pid: str) -> tuple[str, int]:
        ((status, received),) = self.query(
            "SELECT status, amount_received FROM payments WHERE id = :pid", pid=pid
        )
        return str(status), int(received)

    def cursor(self) -> int | None:
        rows = self.query("SELECT block_number FROM scan_cursors WHERE chain = 'local'")
        return int(rows[0][0]) if rows else None

    def transfers(self) -> list[Any]:
        return self.query(
            "SELECT tx_hash, log_index, block_number, block_hash, amount, payment_id "
            "FROM transfers ORDER BY block_number, log_index"
        )

    def assert_untouched(self) -> None:
        """A failed first pass wrote no transfer and no cursor."""
        assert self.transfers() == []
        assert self.cursor() is None

    def stored_text(self) -> str:
        """Everything the database keeps that an operator or `status` can see."""
        rows = self.query("SELECT error, summary FROM job_runs")
        rows += self.query("SELECT limits FROM rpc_endpoint_limits")
        return json.dumps([list(map(str, r)) for r in rows])

    def assert_no_secret(self, *texts: str) -> None:
        status = self.ctrip("status", "--json")
        seen = "\n".join([*texts, status.out, status.err, self.stored_text()])
        for secret in SECRETS:
            assert secret not in seen, secret


# A pass's budget for rate-limit waits (30 s by default), short so these tests are.
RATE_WAIT_S = 6


def _chains_yaml(url: str, tokens: TestTokens, start: int, extra: str = "") -> str:
    return f"""
chains:
  local:
    chain_id: 31337
    rpc_urls: ["{url}"]
    confirmations: 2
    native: {{symbol: ETH, decimals: 18}}
    tokens:
      USDC: {{address: "{tokens.usdc}", decimals: 6}}
      DAI: {{address: "{tokens.dai}", decimals: 18}}
    treasury: "{TREASURY}"
    reorg_depth_blocks: 4
    max_block_range: 50
    block_time_s: 1
    start_block: {start}
    rpc_rate_wait_s: {RATE_WAIT_S}
{extra}
"""


def secret_url(node: HostileNode, *, userinfo: bool = False) -> str:
    base = node.url.replace("http://", "")
    auth = f"{USER}:{PASSWORD}@" if userinfo else ""
    return f"http://{auth}{base}/v3/{PATH_KEY}?apikey={QUERY_KEY}"


@pytest.fixture
def w(
    anvil_snapshot: Anvil, tokens: TestTokens, sqlite_url: str, tmp_path: Path
) -> Iterator[World]:
    mint(anvil_snapshot, tokens.usdc, PAYER, 10**15)
    with HostileNode(anvil_snapshot.url) as node:
        chains = tmp_path / "chains.yaml"
        start = anvil_snapshot.block_number() + 1
        chains.write_text(_chains_yaml(secret_url(node), tokens, start))
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "CTRIP_DATABASE_URL": sqlite_url,
            "CTRIP_CHAINS_FILE": str(chains),
            "CTRIP_MNEMONIC": TEST_MNEMONIC_OWN,
            "COLUMNS": "200",
        }
        yield World(anvil_snapshot, tokens, node, env, sqlite_url, tmp_path, start)


def reconfigure(w: World, url: str, extra: str = "") -> None:
    chains = _chains_yaml(url, w.tokens, w.start, extra)
    Path(w.env["CTRIP_CHAINS_FILE"]).write_text(chains)


def settle_honestly(w: World, paid: dict[str, int]) -> None:
    """Once the node behaves, every payment is found exactly once."""
    w.node.behave()
    w.anvil.mine(3)
    done = w.scan()
    assert done.rc == 0, done
    for pid, units in paid.items():
        assert w.payment(pid) == ("detected", units), pid
    keys = [(t[0], t[1]) for t in w.transfers()]
    assert len(keys) == len(set(keys)) == len(paid)


def fails_then_settles(w: World, paid: dict[str, int], timeout_s: float = 90) -> Done:
    """The pass fails cleanly in bounded time, writes nothing, and once the node
    behaves the next pass finds every payment once."""
    done = w.scan(timeout_s=timeout_s)
    done.clean_failure()
    assert done.seconds < RATE_WAIT_S + 15, done.seconds
    w.assert_untouched()
    settle_honestly(w, paid)
    return done


def refuse(method: str, code: int, message: str) -> Any:
    """Every call of `method` answered with this JSON-RPC error."""

    def per_call(call: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        if call.get("method") == method:
            return error_reply(call, code, message)
        return reply

    return per_call


def pay_both(w: World) -> dict[str, int]:
    native = w.pay_native("1.5", 3 * ETH // 2)
    usdc = w.pay_usdc("12.5", 12_500_000)
    w.anvil.mine(2)
    return {native["id"]: 3 * ETH // 2, usdc["id"]: 12_500_000}


# -- ids and the shape of batch answers --


def test_reordered_replies_with_foreign_ids_still_find_every_payment(w: World) -> None:
    paid = pay_both(w)

    def shuffle(payload: Any, reply: Any) -> Any:
        if not isinstance(reply, list):
            return reply
        foreign = {"jsonrpc": "2.0", "id": 987654321, "result": "0xdead"}
        return [foreign, *reversed(reply), dict(foreign, id="1")]

    w.node.whole = shuffle
    done = w.scan()
    assert done.rc == 0, done
    for pid, units in paid.items():
        assert w.payment(pid) == ("detected", units)
    settle_honestly(w, paid)


def test_duplicate_replies_count_each_payment_once(w: World) -> None:
    paid = pay_both(w)
    w.node.whole = lambda payload, reply: (
        [*reply, *reply] if isinstance(reply, list) else reply
    )
    done = w.scan()
    assert done.rc == 0, done
    settle_honestly(w, paid)


def test_replies_missing_for_some_calls_fail_cleanly_or_are_asked_again(
    w: World,
) -> None:
    paid = pay_both(w)
    w.node.whole = lambda payload, reply: (
        reply[: max(len(reply) - 1, 1)] if isinstance(reply, list) else reply
    )
    done = w.scan()
    assert done.rc in (0, 1), done
    assert "Traceback" not in done.err
    settle_honestly(w, paid)


def test_a_batch_answered_with_one_result_object_fails_cleanly(w: World) -> None:
    paid = pay_both(w)
    w.node.whole = lambda payload, reply: (
        {"jsonrpc": "2.0", "id": payload[0]["id"], "result": reply[0].get("result")}
        if isinstance(reply, list)
        else reply
    )
    fails_then_settles(w, paid)


def test_a_reply_with_an_unhashable_id_fails_cleanly(w: World) -> None:
    paid = pay_both(w)

    def listy(call: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        return dict(reply, id=[call["id"]])

    w.node.per_call = listy
    fails_then_settles(w, paid)


# -- values of the wrong shape --

GARBAGE: list[tuple[str, str, Any]] = [
    ("eth_blockNumber", "number instead of hex", 123),
    ("eth_blockNumber", "negative", "-0x5"),
    ("eth_blockNumber", "not hex", "0xzz"),
    ("eth_chainId", "null", None),
    ("eth_getBlockByNumber", "short hash", "short-hash"),
    ("eth_getBlockByNumber", "number instead of hex block number", "int-number"),
    ("eth_getBlockReceipts", "receipts not a list", {"receipts": []}),
    ("eth_getBlockReceipts", "a receipt that is a string", ["0x00"]),
    ("eth_getLogs", "logs not a list", "0x"),
    ("eth_getLogs", "a log with a short hash", "short-log-hash"),
]


def _garble(method: str, how: Any) -> Any:
    def per_call(call: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        if call.get("method") != method or "result" not in reply:
            return reply
        result = reply["result"]
        if how == "short-hash" and isinstance(result, dict):
            return dict(reply, result=dict(result, hash=result["hash"][:40]))
        if how == "int-number" and isinstance(result, dict):
            return dict(reply, result=dict(result, number=int(result["number"], 16)))
        if how == "short-log-hash":
            if isinstance(result, list) and result:
                bad = [dict(e, transactionHash="0x1234") for e in result]
                return dict(reply, result=bad)
            return reply
        return dict(reply, result=how)

    return per_call


@pytest.mark.parametrize(
    ("method", "what", "how"), GARBAGE, ids=[g[1] for g in GARBAGE]
)
def test_garbage_values_fail_cleanly_and_write_nothing(
    w: World, method: str, what: str, how: Any
) -> None:
    # Tokens only for eth_getLogs (the scan asks for logs), native otherwise.
    if method == "eth_getLogs":
        p = w.pay_usdc("12.5", 12_500_000)
        paid = {p["id"]: 12_500_000}
        w.anvil.mine(2)
    else:
        paid = pay_both(w)
    if method == "eth_getBlockReceipts":
        reconfigure(w, secret_url(w.node), RECEIPTS)
    w.node.per_call = _garble(method, how)
    done = fails_then_settles(w, paid)
    assert "endpoint #1" in done.err or "chain id" in done.err, done.err


def test_a_block_other_than_the_one_asked_fails_cleanly(w: World) -> None:
    paid = pay_both(w)

    def shifted(call: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        if (
            call.get("method") == "eth_getBlockByNumber"
            and call["params"][0] != "latest"
        ):
            n = int(call["params"][0], 16)
            other = w.anvil.rpc("eth_getBlockByNumber", hex(max(n - 1, 0)), False)
            return dict(reply, result=other)
        return reply

    w.node.per_call = shifted
    fails_then_settles(w, paid)


# -- the endpoint's URL and credentials in node errors --


def _echo_url(w: World, method: str) -> Any:
    def per_call(call: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        if call.get("method") != method:
            return reply
        with w.node.lock:
            path, auth = w.node.paths[-1], w.node.authorizations[-1]
        text = f"upstream {path} refused (Authorization: {auth}) for {w.node.url}{path}"
        return error_reply(call, -32000, text)

    return per_call


@pytest.mark.parametrize("method", ["eth_getBlockByNumber", "eth_chainId"])
def test_a_node_echoing_the_url_path_and_query_leaks_nothing(
    w: World, method: str
) -> None:
    paid = pay_both(w)
    w.node.per_call = _echo_url(w, method)
    done = w.scan()
    done.clean_failure()
    assert PATH_KEY in w.node.paths[-1]  # the node did see them
    w.assert_no_secret(done.out, done.err)
    settle_honestly(w, paid)


def test_a_node_echoing_the_authorization_header_leaks_nothing(w: World) -> None:
    paid = pay_both(w)
    reconfigure(w, secret_url(w.node, userinfo=True))
    w.node.per_call = _echo_url(w, "eth_getBlockByNumber")
    done = w.scan()
    done.clean_failure()
    assert w.node.authorizations[-1].startswith("Basic ")
    w.assert_no_secret(done.out, done.err)
    settle_honestly(w, paid)


def test_status_and_sweep_through_an_echoing_node_leak_nothing(w: World) -> None:
    pay_both(w)
    assert w.scan().rc == 0
    w.anvil.mine(3)
    assert w.ctrip("confirm", "--chain", "local", "--json").rc == 0
    w.node.per_call = _echo_url(w, "eth_getBalance")
    sweep = w.ctrip("sweep", "--chain", "local", "--json")
    assert sweep.rc in (0, 1), sweep
    assert "Traceback" not in sweep.err
    probe = w.ctrip("status", "--chain", "local", "--json")
    assert "Traceback" not in probe.err
    w.assert_no_secret(sweep.out, sweep.err, probe.out, probe.err)


# -- HTTP-level hostility --


def _html(h: Any, body: bytes, payload: Any) -> bool:
    page = b"<html><body><h1>502 Bad Gateway</h1>" + b"x" * 6_000 + b"</body></html>"
    send_bytes(h, 200, page, content_type="text/html")
    return True


def test_http_200_with_html_fails_cleanly(w: World) -> None:
    paid = pay_both(w)
    w.node.raw = _html
    fails_then_settles(w, paid)


def test_one_html_page_does_not_leave_a_response_cap_behind(w: World) -> None:
    paid = pay_both(w)
    answered = {"n": 0}

    def once(h: Any, body: bytes, payload: Any) -> bool:
        if isinstance(payload, list) and not answered["n"]:
            answered["n"] += 1
            return _html(h, body, payload)
        return False

    w.node.raw = once
    w.scan()
    settle_honestly(w, paid)
    for _ in range(2):
        w.anvil.mine(2)
        assert w.scan().rc == 0
    ((limits,),) = w.query("SELECT limits FROM rpc_endpoint_limits")
    assert json.loads(limits)["max_response_bytes"] is None, limits


def _trickle(h: Any, body: bytes, payload: Any) -> bool:
    """Headers at once, then the body one byte every half second (slowloris)."""
    h.send_response(200)
    h.send_header("content-type", "application/json")
    h.send_header("content-length", "200")
    h.end_headers()
    try:
        for _ in range(200):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.5)
    except OSError:
        pass
    return True


def _trickle_headers(h: Any, body: bytes, payload: Any) -> bool:
    """The status line, then one header byte every half second: httpx's timeouts are
    per read, so only a deadline on every socket read ends this."""
    try:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(400):
            h.wfile.write(b"a")
            h.wfile.flush()
            time.sleep(0.5)
    except OSError:
        pass
    return True


@pytest.mark.parametrize(
    "trickle", [_trickle, _trickle_headers], ids=["body", "headers"]
)
def test_a_trickling_answer_ends_the_pass_in_bounded_time(
    w: World, trickle: Any
) -> None:
    # Each answer, whole, within `rpc_timeout_s` (3 s here): the pass ends after two
    # rounds of timeouts, not when the node stops trickling.
    reconfigure(w, secret_url(w.node), "    rpc_timeout_s: 3")
    paid = pay_both(w)
    w.node.raw = trickle
    done = w.scan(timeout_s=100)
    assert done.seconds < 25, done.seconds
    done.clean_failure()
    settle_honestly(w, paid)


_BOMB: list[bytes] = []


def _gzip_bomb() -> bytes:
    """A 4 GiB gzip stream of spaces (about 4 MB on the wire)."""
    if not _BOMB:
        import zlib

        z = zlib.compressobj(9, zlib.DEFLATED, 31)
        block = b" " * (1 << 24)
        parts = [z.compress(block) for _ in range(256)]
        _BOMB.append(b"".join(parts) + z.flush())
    return _BOMB[0]


def _bomb(h: Any, body: bytes, payload: Any) -> bool:
    send_bytes(h, 200, _gzip_bomb(), headers={"content-encoding": "gzip"})
    return True


def _limit_memory() -> None:
    import resource

    limit = 2 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_a_gzip_bomb_is_refused_without_exhausting_memory(w: World) -> None:
    paid = pay_both(w)
    _gzip_bomb()
    w.node.raw = _bomb
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ctrip_cli", "scan", "--chain", "local", "--json"],
        env=w.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_limit_memory,
    )
    result = Done(done.returncode, done.stdout, done.stderr, time.monotonic() - started)
    result.clean_failure()
    assert "MemoryError" not in result.err
    settle_honestly(w, paid)


# -- rate limits and refusals that never end --


def _http_429(retry_after: str | None, times: int | None = None) -> Any:
    count = {"n": 0}

    def raw(h: Any, body: bytes, payload: Any) -> bool:
        if times is not None and count["n"] >= times:
            return False
        count["n"] += 1
        headers = {} if retry_after is None else {"retry-after": retry_after}
        send_bytes(h, 429, b'{"error": "too many requests"}', headers)
        return True

    return raw


@pytest.mark.parametrize(
    "retry_after", ["1000000000", "-5", "soon", "Fri, 31 Dec 9999 23:59:59 GMT"]
)
def test_odd_retry_after_once_is_waited_within_bounds(
    w: World, retry_after: str
) -> None:
    paid = pay_both(w)
    w.node.raw = _http_429(retry_after, times=1)
    done = w.scan()
    assert done.rc == 0, done
    assert done.seconds < RATE_WAIT_S + 15, done.seconds
    for pid, units in paid.items():
        assert w.payment(pid) == ("detected", units)
    settle_honestly(w, paid)


def test_a_retry_after_of_a_superscript_digit_fails_cleanly(w: World) -> None:
    paid = pay_both(w)

    def raw(h: Any, body: bytes, payload: Any) -> bool:
        h.send_response(429)
        h.send_header("retry-after", "\u00b2")  # latin-1 encoded by http.server
        h.send_header("content-length", "0")
        h.end_headers()
        return True

    w.node.raw = raw
    done = w.scan(timeout_s=60)
    assert done.rc in (0, 1), done
    assert "Traceback" not in done.err, done.err[-400:]
    settle_honestly(w, paid)


def test_429_forever_ends_the_pass_with_exit_1(w: World) -> None:
    paid = pay_both(w)
    w.node.raw = _http_429("3")
    done = w.scan(timeout_s=90)
    done.clean_failure()
    assert "rate" in done.err.lower()
    assert done.seconds < RATE_WAIT_S + 15, done.seconds
    w.assert_untouched()
    settle_honestly(w, paid)


@pytest.mark.parametrize("retry_after", ["0", "Thu, 01 Jan 1970 00:00:00 GMT"])
def test_429_forever_with_retry_after_zero_ends_the_pass(
    w: World, retry_after: str
) -> None:
    pay_both(w)
    w.node.raw = _http_429(retry_after)
    done = w.scan(timeout_s=50)
    assert done.rc == 1, (done.rc, done.seconds)
    assert "Traceback" not in done.err


def test_413_forever_fails_cleanly_and_the_next_pass_still_works(w: World) -> None:
    paid = pay_both(w)

    def raw(h: Any, body: bytes, payload: Any) -> bool:
        send_bytes(
            h,
            413,
            b"<html>413 Request Entity Too Large</html>",
            content_type="text/html",
        )
        return True

    w.node.raw = raw
    fails_then_settles(w, paid)


def test_response_too_large_even_for_single_calls_fails_cleanly(w: World) -> None:
    paid = pay_both(w)
    w.node.per_call = refuse("eth_getBlockByNumber", -32003, "response too large")
    fails_then_settles(w, paid)


def test_method_not_found_for_eth_block_number_fails_cleanly(w: World) -> None:
    paid = pay_both(w)
    # geth's wording (rpc/errors.go methodNotFoundError).
    text = "the method eth_blockNumber does not exist/is not available"
    w.node.per_call = refuse("eth_blockNumber", -32601, text)
    done = fails_then_settles(w, paid)
    assert "eth_blockNumber" in done.err


def test_a_chain_id_that_flips_between_passes_changes_nothing(w: World) -> None:
    paid = pay_both(w)
    assert w.scan().rc == 0
    before = (w.transfers(), w.cursor())
    w.anvil.mine(3)

    def per_call(call: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        if call.get("method") == "eth_chainId":
            return dict(reply, result="0x38")
        return reply

    w.node.per_call = per_call
    for args in (("scan",), ("confirm",), ("sweep",)):
        done = w.ctrip(*args, "--chain", "local", "--json")
        assert done.rc in (1, 2), (args, done)
        assert "Traceback" not in done.err
        assert "chain id" in done.err, done.err
    assert (w.transfers(), w.cursor()) == before
    for pid, units in paid.items():
        assert w.payment(pid) == ("detected", units)


# -- answers that disagree with the headers (a lagging or lying backend) --


def _lagging_receipts(w: World, from_block: int, how: str) -> Any:
    def per_call(call: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        if call.get("method") != "eth_getBlockReceipts":
            return reply
        n = int(call["params"][0], 16)
        if n < from_block:
            return reply
        if how == "empty":
            return dict(reply, result=[])
        return dict(reply, result=w.anvil.rpc("eth_getBlockReceipts", hex(n - 1)))

    return per_call


@pytest.mark.parametrize("how", ["empty", "previous-block"])
def test_receipts_that_contradict_the_header_never_move_the_cursor_past_a_payment(
    w: World, how: str
) -> None:
    reconfigure(w, secret_url(w.node), RECEIPTS)
    w.anvil.mine(1)
    paid_from = w.anvil.block_number() + 1
    paid = pay_both(w)
    w.node.per_call = _lagging_receipts(w, paid_from, how)
    done = w.scan()
    assert done.rc in (0, 1), done
    cursor = w.cursor()
    assert cursor is None or cursor < paid_from, (cursor, paid_from)
    settle_honestly(w, paid)


def test_logs_with_a_block_hash_the_header_contradicts_are_not_recorded(
    w: World,
) -> None:
    # A token payment in the batch's middle, far below the reorg window: its header
    # is not among those the batch reads.
    w.anvil.mine(3)
    p = w.pay_usdc("12.5", 12_500_000)
    w.anvil.mine(20)
    forged = "0x" + "ab" * 32

    def per_call(call: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        if call.get("method") == "eth_getLogs" and isinstance(
            reply.get("result"), list
        ):
            return dict(
                reply, result=[dict(e, blockHash=forged) for e in reply["result"]]
            )
        return reply

    w.node.per_call = per_call
    done = w.scan()
    assert done.rc in (0, 1), done
    w.node.behave()
    for _ in range(3):
        w.anvil.mine(3)
        assert w.scan().rc == 0
        assert w.ctrip("confirm", "--chain", "local", "--json").rc == 0
    assert w.payment(p["id"]) == ("confirmed", 12_500_000)
    assert all(t[3] != forged for t in w.transfers()), w.transfers()


@pytest.mark.parametrize("field", ["blockNumber", "logIndex"])
def test_huge_quantities_in_receipts_fail_cleanly_and_write_nothing(
    w: World, field: str
) -> None:
    reconfigure(w, secret_url(w.node), RECEIPTS)
    paid = pay_both(w)
    huge = "0x" + "f" * 64

    def per_call(call: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        result = reply.get("result")
        if call.get("method") != "eth_getBlockReceipts" or not isinstance(result, list):
            return reply
        out = []
        for r in result:
            logs = [dict(e, **{field: huge}) for e in r.get("logs") or []]
            out.append(
                dict(r, logs=logs, **({field: huge} if field == "blockNumber" else {}))
            )
        return dict(reply, result=out)

    w.node.per_call = per_call
    fails_then_settles(w, paid)


# -- the call budget --


def test_the_call_budget_holds_over_a_whole_pass(w: World) -> None:
    reconfigure(w, secret_url(w.node), "    rpc_max_calls_per_s: 8")
    paid = pay_both(w)
    w.anvil.mine(30)
    done = w.scan()
    assert done.rc == 0, done
    assert len(w.node.sent) > 16  # long enough to span several windows
    assert w.node.max_calls_in_1s() <= 8, w.node.max_calls_in_1s()
    settle_honestly(w, paid)


def test_the_call_budget_holds_while_the_endpoint_answers_5xx(w: World) -> None:
    reconfigure(w, secret_url(w.node), "    rpc_max_calls_per_s: 8")
    paid = pay_both(w)
    w.anvil.mine(8)
    count = {"n": 0}

    def flaky(h: Any, body: bytes, payload: Any) -> bool:
        count["n"] += 1
        if count["n"] % 2:
            send_bytes(h, 503, b"busy", content_type="text/plain")
            return True
        return False

    w.node.raw = flaky
    done = w.scan()
    assert done.rc in (0, 1), done
    assert w.node.max_calls_in_1s() <= 8, w.node.max_calls_in_1s()
    settle_honestly(w, paid)


# -- a limit that changes between passes --


def _batch_cap(cap: int) -> Any:
    """geth's answer to a batch over its limit: one error object, the first id."""

    def raw(h: Any, body: bytes, payload: Any) -> bool:
        if isinstance(payload, list) and len(payload) > cap:
            send_json(h, 200, error_reply(payload[0], -32600, "batch too large"))
            return True
        return False

    return raw


def test_a_batch_cap_that_tightens_between_passes_is_relearnt(w: World) -> None:
    paid = pay_both(w)
    w.anvil.mine(30)
    w.node.raw = _batch_cap(6)
    assert w.scan().rc == 0
    for pid, units in paid.items():
        assert w.payment(pid) == ("detected", units)
    p = w.pay_native("2", 2 * ETH)
    w.anvil.mine(30)
    w.node.raw = _batch_cap(2)
    done = w.scan()
    assert done.rc == 0, done
    assert w.payment(p["id"]) == ("detected", 2 * ETH)
    ((limits,),) = w.query("SELECT limits FROM rpc_endpoint_limits")
    assert json.loads(limits)["max_batch"] <= 2, limits
