"""`--help`: plain text that keeps every command, option and help text, and loads
nothing a help screen does not need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What help must not load: Typer's Rich help (markdown-it, pygments), the database,
# settings validation, the chain.
HEAVY = (
    "typer.rich_utils",
    "rich",
    "markdown_it",
    "pygments",
    "pydantic",
    "sqlalchemy",
    "yaml",
    "web3",
    "httpx",
)
_PROBE = """
import json, sys
sys.argv = ["ctrip", *sys.argv[1:]]
from ctrip_cli.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
heavy = [m for m in {heavy!r} if m in sys.modules]
sys.stderr.write("\\nPROBE " + json.dumps({{"code": code, "heavy": heavy}}) + "\\n")
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["scan", "--help"],
        ["payments", "create", "--help"],
        ["status", "--help"],
        [],
    ],
)
def test_help_loads_no_heavy_module(args, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTRIP_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    probe = json.loads(done.stderr.rsplit("PROBE ", 1)[1])
    assert probe["heavy"] == [], done.stderr
    assert probe["code"] == (2 if not args else 0)
    assert done.stdout.startswith("Usage: ")


def test_help_is_plain_and_keeps_laid_out_lines(ctrip):
    result = ctrip("--help")
    assert result.exit_code == 0
    text = result.stdout
    assert "[bold]" not in text
    assert "[/]" not in text
    # An indented block of the root help is printed as written, one line each.
    assert "\n    ctrip scan --chain bsc      new blocks: record deposits" in text
    assert "\n    ctrip status --check        health at a glance" in text
    # Each command with its whole first paragraph.
    flat = " ".join(text.split())
    assert (
        "confirm Promote detected payments whose transfers are deep enough and still "
        "canonical; expire overdue pending ones." in flat
    )
    for option in ("--chains", "--log-format", "--verbose", "CTRIP_CHAINS_FILE"):
        assert option in text


def test_command_help_lists_options_defaults_and_example(ctrip):
    text = ctrip("payments", "create", "--help").stdout
    flat = " ".join(text.split())
    assert "Usage: " in text
    assert "payments create [OPTIONS]" in text
    assert "Example: ctrip payments create --chain bsc --asset USDT" in flat
    assert "--chain <str> Chain name from chains.yaml. [required]" in flat
    # Brackets that are not Rich styles are text.
    assert (
        "--expires-in <str> Deadline from now: 90s, 30m, 2h, 1d. [default: 30m]" in flat
    )
    deliver = " ".join(ctrip("deliver-webhooks", "--help").stdout.split())
    assert "--limit <int range> Claim at most this many events." in deliver
    assert "default: 1000; 1<=x<=1000000" in deliver


def test_no_arguments_shows_the_help_and_exits_2(ctrip):
    for args in ((), ("payments",), ("db",), ("webhooks",)):
        result = ctrip(*args)
        assert result.exit_code == 2, args
        assert "Usage: " in result.stdout, args
        assert "Commands:" in result.stdout, args


def test_usage_errors_keep_their_message_and_exit_2(ctrip):
    missing = ctrip("payments", "create", "--chain", "local")
    assert missing.exit_code == 2
    assert "Missing option '--asset'" in missing.stderr
    bad = ctrip("--log-format", "xml", "status")
    assert bad.exit_code == 2
    assert "Invalid value for --log-format: use text or json" in bad.stderr
    unknown = ctrip("nosuch")
    assert unknown.exit_code == 2
    assert "No such command 'nosuch'" in unknown.stderr
