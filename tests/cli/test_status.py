"""`ctrip status` through the CLI: --check, formats, secrets, and what each pass emits."""

from __future__ import annotations

import dataclasses
import http.server
import io
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from typer.testing import CliRunner

from ctrip_cli.cli.logs import JsonLines, PlainLines
from ctrip_cli.cli.runtime import Runtime
from ctrip_cli.cli.status_probe import endpoint_label
from ctrip_cli.config import StatusSettings
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.models import JobRun, ScanCursor
from ctrip_cli.jobs import passes

SECRET = "k3y-do-not-print-0123456789"


def _insert(url: str, *rows) -> None:
    engine = db_engine.make_engine(url)
    with db_engine.session_factory(engine)() as session, session.begin():
        session.add_all(rows)
    engine.dispose()


def _scan_ok(at: datetime, chain: str = "local") -> JobRun:
    return JobRun(
        job="scan",
        chain=chain,
        started_at=at - timedelta(seconds=1),
        finished_at=at,
        outcome="ok",
        summary='{"job": "scan", "chain": "local", "from_block": 1, "to_block": 9}',
        error=None,
    )


def _pay(ctrip, env=None) -> None:
    args = ("payments", "create", "--chain", "local", "--asset", "ETH", "--amount", "1")
    assert ctrip(*args, env=env).exit_code == 0


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("https://rpc.example.org", "#1 rpc.example.org"),
        ("http://127.0.0.1:8545/", "#1 127.0.0.1:8545"),
        ("https://mainnet.infura.io/v3/abcdef", "endpoint #1"),
        ("https://user:pw@rpc.example.org", "endpoint #1"),
        ("https://rpc.example.org/?apikey=abc", "endpoint #1"),
        ("wss://rpc.example.org/ws/abc", "endpoint #1"),
        ("http://[::1", "endpoint #1"),
    ],
)
def test_endpoint_label_hides_anything_that_may_be_a_key(url, label):
    assert endpoint_label(url, 1) == label


def test_check_exits_3_and_lists_reasons_on_stderr(ctrip, cli_env):
    _pay(ctrip)
    stale = datetime.now(UTC) - timedelta(hours=1)
    _insert(cli_env["CTRIP_DATABASE_URL"], _scan_ok(stale))
    result = ctrip(
        "status", "--check", env={"CTRIP_LOCAL_RPC_URL": "http://127.0.0.1:9"}
    )
    assert result.exit_code == 3
    reasons = result.stderr.splitlines()
    assert (
        "unhealthy: chain local: no RPC endpoint answers (#1 127.0.0.1:9: ConnectError)"
        in reasons
    )
    assert any(
        r.startswith("unhealthy: pass scan:local: no success for 1h00m")
        for r in reasons
    )
    assert "Traceback" not in result.output


def test_down_rpc_with_a_key_in_its_url_never_prints_the_url(ctrip):
    env = {"CTRIP_LOCAL_RPC_URL": f"http://127.0.0.1:9/v3/{SECRET}"}
    _pay(ctrip, env)
    for args in (
        ["status"],
        ["status", "--json"],
        ["status", "--format", "prometheus"],
        ["status", "--check"],
        ["--log-format", "json", "status", "--check"],
    ):
        result = ctrip(*args, env=env)
        assert result.exit_code in (0, 3), result.output
        assert SECRET not in result.stdout + result.stderr
        assert "endpoint #1" in result.stdout + result.stderr


def test_healthy_on_a_real_node_exits_0(ctrip, cli_env, anvil):
    env = {"CTRIP_LOCAL_RPC_URL": anvil.url}
    _pay(ctrip, env)
    head = anvil.block_number()
    now = datetime.now(UTC)
    _insert(
        cli_env["CTRIP_DATABASE_URL"],
        ScanCursor(chain="local", block_number=head, block_hash="0x00", updated_at=now),
        _scan_ok(now),
    )
    result = ctrip("status", "--check", "--json", env=env)
    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    local = status["chains"]["local"]
    assert (local["head"], local["cursor"], local["lag_blocks"]) == (head, head, 0)
    assert local["rpc"] == "up"
    assert status["chains"]["ethereum"]["rpc"] == "not checked"  # unused: not probed
    assert local["endpoints"][0]["label"].startswith("#1 127.0.0.1:")
    assert local["gas_payer"]["balance_wei"] == 0
    # Priced as a sweep reserves (2 x base fee + tip), not at the lower eth_gasPrice.
    block = anvil.rpc("eth_getBlockByNumber", "latest", False)
    base, tip = (
        int(block["baseFeePerGas"], 16),
        int(anvil.rpc("eth_maxPriorityFeePerGas"), 16),
    )
    assert (
        local["gas_payer"]["gas_price_wei"]
        >= 2 * base + tip
        > int(anvil.rpc("eth_gasPrice"), 16)
    )
    assert status["payments"] == {"pending": 1}
    assert status["healthy"] is True
    assert status["passes"]["scan:local"]["last_outcome"] == "ok"
    table = ctrip("status", env=env)
    assert "healthy" in table.stdout
    assert "scan:local" in table.stdout


def test_prometheus_format_parses(ctrip, cli_env):
    _pay(ctrip)
    _insert(cli_env["CTRIP_DATABASE_URL"], _scan_ok(datetime.now(UTC)))
    result = ctrip(
        "status",
        "--format",
        "prometheus",
        env={"CTRIP_LOCAL_RPC_URL": "http://127.0.0.1:9"},
    )
    assert result.exit_code == 0
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(result.stdout)
        for s in family.samples
    }
    assert samples[("ctrip_payments", (("chain", "local"), ("status", "pending")))] == 1
    assert (
        samples[
            (
                "ctrip_pass_recent_runs",
                (("chain", "local"), ("outcome", "ok"), ("pass", "scan")),
            )
        ]
        == 1
    )
    assert (
        samples[
            (
                "ctrip_rpc_endpoint_up",
                (("chain", "local"), ("endpoint", "#1 127.0.0.1:9")),
            )
        ]
        == 0
    )
    assert samples[("ctrip_healthy", ())] == 0


def test_unknown_format_is_a_usage_error(ctrip):
    result = ctrip("status", "--format", "xml")
    assert result.exit_code == 2
    assert "'xml'" in result.stderr


# -- what each pass emits: one summary log line, metrics files -----------------------


@pytest.fixture
def captured_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("ctrip")
    old = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield stream
    logger.handlers[:], logger.level, logger.propagate = old


def _runtime(settings) -> Runtime:
    return Runtime(
        chains_file=None, out=Console(), err=Console(stderr=True), settings=settings
    )


def test_each_pass_logs_exactly_one_summary_line(make_settings, captured_log):
    rt = _runtime(make_settings())
    result = {
        "job": "scan",
        "chain": "local",
        "from_block": 5,
        "to_block": 9,
        "hashes": [1, 2],
    }
    rt.run_job(passes.SCAN, "local", lambda session: result)
    (line,) = captured_log.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["event"] == "pass"
    assert (entry["job"], entry["chain"], entry["outcome"]) == ("scan", "local", "ok")
    assert (entry["from_block"], entry["to_block"]) == (5, 9)
    assert "hashes" not in entry
    assert entry["duration_s"] >= 0
    assert entry["message"].startswith("scan local ok in ")
    assert "from_block=5 to_block=9" in entry["message"]


def test_plain_log_lines_are_one_unwrapped_line():
    record = logging.LogRecord(
        "ctrip", logging.INFO, __file__, 1, "x " * 200, None, None
    )
    assert "\n" not in PlainLines().format(record)


def test_each_pass_rewrites_the_metrics_textfile(make_settings, tmp_path, captured_log):
    (tmp_path / "textfiles").mkdir()
    target = tmp_path / "textfiles" / "ctrip.prom"
    rt = _runtime(make_settings(status=StatusSettings(metrics_textfile=target)))
    for _ in range(2):
        rt.run_job(passes.CONFIRM, "local", lambda session: {"confirmed": 2})
    names = {
        (s.name, s.labels.get("outcome"), s.labels.get("field")): s.value
        for family in text_string_to_metric_families(target.read_text())
        for s in family.samples
    }
    assert names[("ctrip_pass_recent_runs", "ok", None)] == 2
    assert names[("ctrip_pass_last_result", None, "confirmed")] == 2
    assert [p.name for p in target.parent.iterdir()] == ["ctrip.prom"]


def test_each_pass_pushes_to_a_pushgateway(make_settings, captured_log):
    received: list[tuple[str, str, bytes]] = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.command, self.path, body))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        gateway = f"http://127.0.0.1:{server.server_address[1]}"
        from pydantic import SecretStr

        settings = make_settings(
            status=StatusSettings(metrics_pushgateway=SecretStr(gateway))
        )
        _runtime(settings).run_job(passes.SWEEP, "local", lambda s: {"sent": 1})
    finally:
        server.shutdown()
        server.server_close()
    ((method, path, body),) = received
    assert (method, path) == ("PUT", "/metrics/job/ctrip")
    assert (
        b'ctrip_pass_recent_runs{chain="local",outcome="ok",pass="sweep"} 1.0' in body
    )


def test_watch_refreshes_until_interrupted(ctrip, monkeypatch):
    _pay(ctrip)
    naps = []

    def sleep(seconds):
        naps.append(seconds)
        if len(naps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("ctrip_cli.cli.status.time.sleep", sleep)
    result = ctrip(
        "status",
        "--watch",
        "--interval",
        "2",
        env={"CTRIP_LOCAL_RPC_URL": "http://127.0.0.1:9"},
    )
    assert result.exit_code == 0
    assert naps == [2.0, 2.0]
    assert "payments" in result.stdout


class _Node(http.server.BaseHTTPRequestHandler):
    """A JSON-RPC endpoint that misbehaves as its path says (real HTTP, 127.0.0.1)."""

    answers: ClassVar[dict[str, dict]] = {
        "/ok": {
            "eth_chainId": "0x7a69",
            "block": {"number": "0x10", "timestamp": "0x1"},
        },
        "/other-chain": {
            "eth_chainId": "0x1",
            "block": {"number": "0x1", "timestamp": "0x1"},
        },
        "/rpc-error": {"error": {"code": -32000, "message": "boom"}},
        "/null-block": {"eth_chainId": "0x7a69", "block": None},
        "/garbage-hex": {"eth_chainId": "banana"},
    }

    def do_POST(self):
        call = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/500":
            self.send_response(500)
            self.end_headers()
            return
        if self.path == "/not-json":
            body = b"<html>hello</html>"
        else:
            answer = self.answers[self.path]
            if "error" in answer:
                reply = {"jsonrpc": "2.0", "id": 1, "error": answer["error"]}
            else:
                key = (
                    "block"
                    if call["method"] == "eth_getBlockByNumber"
                    else call["method"]
                )
                reply = {"jsonrpc": "2.0", "id": 1, "result": answer[key]}
            body = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_misbehaving_endpoints_are_reported_down_never_crash():
    from ctrip_cli.cli.status_probe import probe

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Node)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        got = {
            path: probe(base + path, 1, 31337, timeout_s=5)
            for path in ("/ok", "/other-chain", "/rpc-error", "/null-block",
                         "/garbage-hex", "/500", "/not-json")
        }  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert got["/ok"].ok
    assert (got["/ok"].head, got["/ok"].head_timestamp) == (16, 1)
    errors = {path: e.error for path, e in got.items() if not e.ok}
    assert errors == {
        "/other-chain": "serves chain id 1, chains.yaml says 31337",
        "/rpc-error": "eth_chainId: endpoint #1: boom (code -32000)",
        "/null-block": "eth_getBlockByNumber: endpoint #1 sent a malformed answer "
        "(block is not an object)",
        "/garbage-hex": "eth_chainId: endpoint #1 sent a malformed answer "
        "(quantity is not a hex quantity)",
        "/500": "HTTP 500",
        "/not-json": "not JSON",
    }
    assert all(e.label == "endpoint #1" for e in got.values())


def test_dashboard_renders_every_section():
    from ctrip_cli.cli.status import view
    from ctrip_cli.jobs import status as s

    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    ago = now - timedelta(minutes=20)
    chain = s.ChainStatus(
        in_use=True,
        head=1_000,
        cursor=400,
        lag_blocks=600,
        lag_s=600.0,
        max_lag_blocks=300,
        head_age_s=3.0,
        rpc="degraded",
        endpoints=[
            s.Endpoint("#1 a.example", ok=True, head=1_000, latency_ms=7),
            s.Endpoint("endpoint #2", ok=False, error="ConnectTimeout"),
        ],
        payments={"confirmed": 2},
        sweeps=s.SweepStatus(2, 1, ago, 1, 1, ago, {"pending": 1}),
        gas_payer=s.GasPayer("0x" + "ab" * 20, 10, symbol="BNB", needed_wei=10**15),
    )
    run = s.PassStatus(
        "scan", "bsc", now, "error", 1.5, ago, now, "RpcUnavailableError: [x]", None, {}, None, None
    )  # fmt: skip
    result = s.StatusResult(
        chains={"bsc": chain, "polygon": dataclasses.replace(chain, in_use=False, endpoints=[], cursor=None)},
        payments={"confirmed": 2},
        webhooks={"failed": 1},
        payments_oldest={"pending": None, "detected": ago},
        outbox=s.Outbox(0, 0, 1, 0, None, None),
        passes={"scan:bsc": run},
        checked_at=now,
        healthy=False,
        problems=["chain bsc: scan lags 600 blocks"],
        warnings=["chain bsc: RPC endpoint #2 is down (ConnectTimeout)"],
    )  # fmt: skip
    console = Console(width=120, record=True)
    console.print(view(result))
    text = console.export_text()
    for needle in (
        "bsc  rpc degraded",
        "lag 600 (~10m00s) of 300",
        "endpoint #2: down ConnectTimeout",
        "awaiting 2 (1 token, oldest 20m00s ago)",
        "stuck 1",
        "BNB; 1 token sweep(s) need up to ~0.001 BNB",
        "not in use (no payments, never scanned): polygon",
        "oldest detected",
        "RpcUnavailableError: [x]",
        "warning: chain bsc: RPC endpoint #2 is down",
        "unhealthy: chain bsc: scan lags 600 blocks",
    ):
        assert needle in text, needle


def test_every_command_help_has_an_example():
    """`ctrip --help` and each subcommand's help show how to use it (issue 6)."""
    import typer

    from ctrip_cli.cli import app

    runner = CliRunner()
    root = typer.main.get_command(app)
    paths = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        paths += [[name, sub] for sub in subs] if subs else [[name]]
    assert ["status"] in paths
    assert "ctrip payments create --chain" in runner.invoke(app, ["--help"]).stdout
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, path
        assert "Example" in result.stdout, path
