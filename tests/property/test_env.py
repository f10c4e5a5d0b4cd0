"""Environment settings: any value of any CTRIP_* variable either works or is refused
with exit 2 by a message naming the variable (or, for a variable chains.yaml
interpolates, the chains.yaml location); no traceback, no echoed secret, nothing
written."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from tests.property._support import all_output, assert_clean_usage_error, row_counts

REPO = Path(__file__).resolve().parents[2]
NUMERIC_ENV = [
    "CTRIP_DEFAULT_EXPIRES_IN_S",
    "CTRIP_UNDERPAYMENT_TOLERANCE_BPS",
    "CTRIP_SWEEP_MAX_FEE_SHARE_BPS",
    "CTRIP_SWEEP_STUCK_AFTER_S",
    "CTRIP_SWEEP_FEE_BUMP_BPS",
    "CTRIP_STATUS_INTERVAL_S",
    "CTRIP_STATUS_STALE_FACTOR",
    "CTRIP_STATUS_MAX_LAG_S",
    "CTRIP_STATUS_PROBE_TIMEOUT_S",
]
# Every variable the package reads, found in its source so a new one is fuzzed too.
# CTRIP_TEST_CRASH_AT is the sweep's crash-injection hook for tests, not a setting.
ALL_ENV = sorted(
    {
        name
        for path in (REPO / "ctrip_cli").rglob("*.py")
        for name in re.findall(r"CTRIP_[A-Z0-9_]+", path.read_text())
    }
    - {"CTRIP_TEST_CRASH_AT"}
)
SECRET = "hunter2"
# No lone surrogates but those an environment can carry (os.environ decodes bytes
# with surrogateescape: only U+DC80-U+DCFF; "\udcff" is sampled below).
env_text = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    max_size=12,
)
env_value = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**12).map(str),
    st.sampled_from(
        ["", "0", "-1", "1.5", "abc", "1e3", " 7 ", "0x10", "99999999999999999999"]
    ),
    st.sampled_from(["１２", "٣", "inf", "nan", "-inf", "1_000", "\udcff", "\u202e1"]),
    env_text,
)
# URLs only ever name loopback IP literals: no resolver is asked about a host.
host = st.sampled_from(["127.0.0.1", "[::1]", "[::1", "127.0.0.1:99999", "127.0.0.1:x"])
url_value = st.builds(
    lambda scheme, h, path: f"{scheme}://u:{SECRET}@{h}/{path}?token={SECRET}",
    st.sampled_from(["http", "https", "ws", "ftp", "postgresql", "sqlite", "mysql"]),
    host,
    env_text.filter(lambda t: "/" not in t and "?" not in t),
)


def _create(ctrip, env):
    return ctrip(
        "payments",
        "create",
        "--chain",
        "local",
        "--asset",
        "ETH",
        "--amount",
        "1",
        env=env,
    )


@given(name=st.sampled_from(NUMERIC_ENV), value=env_value)
@example(name="CTRIP_DEFAULT_EXPIRES_IN_S", value="999999999")
def test_numeric_env_value_works_or_is_named(ctrip, cli_env, name, value):
    before = row_counts(cli_env["CTRIP_DATABASE_URL"])
    result = _create(ctrip, {name: value})
    if result.exit_code == 0:
        return
    assert_clean_usage_error(result)
    assert name in re.sub(r"\s+", "", all_output(result))
    assert row_counts(cli_env["CTRIP_DATABASE_URL"]) == before


def _file_value(tmp_path_factory, data: bytes, mode: int) -> str:
    path = tmp_path_factory.mktemp("envfile") / "value"
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


@given(
    name=st.sampled_from(ALL_ENV),
    value=st.one_of(env_value, url_value),
    data=st.binary(max_size=64),
    mode=st.sampled_from([0o600, 0o644, 0o000]),
)
@example(name="CTRIP_GAS_PAYER_PATH", value="m/44'/60'/0'/0/0", data=b"", mode=0o600)
@example(
    name="CTRIP_WEBHOOK_URL",
    value="https://u:hunter2@h:99999/?t=hunter2",
    data=b"",
    mode=0o600,
)
def test_any_ctrip_variable_works_or_is_named(
    ctrip, cli_env, tmp_path_factory, name, value, data, mode
):
    if name.endswith("_FILE"):  # a path: to a file of random bytes
        value = _file_value(tmp_path_factory, data, mode)
    env = {name: value}
    if name == "CTRIP_MNEMONIC_FILE":
        env["CTRIP_MNEMONIC"] = ""
    url = cli_env["CTRIP_DATABASE_URL"]
    before = row_counts(url)
    result = _create(ctrip, env)
    text = all_output(result)
    assert "Traceback" not in text
    if name.endswith(("_URL", "_PUSHGATEWAY")):  # shown redacted, if at all
        assert SECRET not in text
    if result.exit_code == 0:
        return
    if name in ("CTRIP_MNEMONIC", "CTRIP_WEBHOOK_SECRET") and len(value.strip()) > 3:
        assert value.strip() not in text  # a secret is never echoed
    after = row_counts(url)
    assert after == before
    flat = re.sub(r"\s+", "", text)
    if result.exit_code == 1:
        # Only a database that is unreachable or has no schema may stop a create.
        assert name == "CTRIP_DATABASE_URL", text
        assert "Databaseunavailable" in flat or "ctripdbupgrade" in flat, text
        return
    assert_clean_usage_error(result)
    if name.endswith("_RPC_URL"):  # interpolated into chains.yaml
        assert "chains." in flat or name in flat, text
    elif name == "CTRIP_CHAINS_FILE":  # its errors name the file it points at
        assert re.sub(r"\s+", "", value) in flat, text
    elif name == "CTRIP_LOG_FORMAT":  # a root option: typer names the option
        assert "--log-format" in flat, text
    else:
        assert name in flat, text
