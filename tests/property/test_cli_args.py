"""Random command lines: no traceback ever, exit codes from the contract only, and a
usage error (exit 2) names what was wrong and writes nothing."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tests.property._support import all_output, row_counts

COMMANDS = [
    ["db", "upgrade"],
    ["payments", "create"],
    ["payments", "list"],
    ["payments", "show"],
    ["status"],
    ["webhooks", "list"],
    ["webhooks", "retry"],
    ["scan"],
    ["confirm"],
    ["sweep"],
    ["deliver-webhooks"],
]
OPTIONS = [
    "--chain",
    "--asset",
    "--amount",
    "--expires-in",
    "--webhook-url",
    "--reference",
    "--json",
    "--status",
    "--limit",
    "--check",
    "--time-budget",
    "--dry-run",
    "--all-failed",
    "--from-block",
    "--bogus",
    "-x",
]
VALUES = [
    "local",
    "ethereum",
    "nope",
    "ETH",
    "USDC",
    "DAI",
    "1",
    "0",
    "-1",
    "12.5",
    "1e3",
    "abc",
    "30m",
    "0s",
    "soon",
    "http://127.0.0.1:9/hook",
    "ftp://y",
    "pending",
    "confirmed",
    "bogus",
    "",
    "pay_0",
    "[/x]",
    "%s",
    "{}",
    "99999999999999999999",
    # Hostile values of the security review.
    "99999999d",
    "https://" + ".".join(["a" * 60] * 5) + "/hook",
    "https://[::1/",
    "https://h:99999/",
    "https://h:abc/",
    "https://u:hunter2@[::1/x?token=hunter2",
    "invoice\u202e",
    "a\u200bb",
    "\udcff",  # the argv byte 0xff, as Python decodes it
    "１２",
    "inf",
    "nan",
    "pay_" + "0" * 60,
    "msg_\udcfe",
]
# Anything argv can carry, including lone surrogates (undecodable bytes); no NUL.
argv_text = st.text(st.characters(blacklist_characters="\x00"), max_size=12)
token = st.one_of(st.sampled_from(OPTIONS), st.sampled_from(VALUES), argv_text)


@st.composite
def command_line(draw: st.DrawFn) -> list[str]:
    base = draw(st.sampled_from(COMMANDS))
    return [*base, *draw(st.lists(token, max_size=8))]


@given(argv=command_line())
def test_any_command_line_fails_cleanly(ctrip, cli_env, argv):
    url = cli_env["CTRIP_DATABASE_URL"]
    before = row_counts(url)
    # Point the local chain at a closed port and keep webhooks private-only: hermetic.
    result = ctrip(*argv, env={"CTRIP_LOCAL_RPC_URL": "http://127.0.0.1:9"})
    text = all_output(result)
    assert "Traceback" not in text
    if "--webhook-url" in argv:
        # A webhook URL is shown redacted, whether accepted or refused.
        assert "hunter2" not in text
    assert result.exit_code in (0, 1, 2, 3), text
    if result.exit_code == 2:
        assert text.strip(), "a usage error must say what is wrong"
        flat = re.sub(r"\s+", "", text)
        named = [
            t for t in argv[1:] if len(t.strip()) > 1 and re.sub(r"\s+", "", t) in flat
        ]
        assert named or re.search(r"--[a-z]|Missing|No such|requires|Usage", text), text
        assert row_counts(url) == before
    if result.exit_code != 0:
        after = row_counts(url)
        # A failed pass may record its run (job_runs) but never half-writes business rows.
        assert {k: v for k, v in after.items() if k != "job_runs"} == {
            k: v for k, v in before.items() if k != "job_runs"
        }
