"""Hostile configuration (issue cases 4, 5, 6 and 7): YAML bombs, deep nesting,
duplicate keys, inf, non-ASCII digits, public mnemonics, a gas payer inside the
deposit branch, a mnemonic file others can read; and the shared URL helpers."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from ctrip_cli import redact, urls
from ctrip_cli.chain import public_mnemonics
from ctrip_cli.chain.signer import KeyRing
from ctrip_cli.config import load_chains, load_settings
from ctrip_cli.errors import ConfigError
from tests.conftest import LOCAL_CHAINS_YAML, TEST_MNEMONIC_OWN

GOOD_CHAIN = """
chains:
  x:
    chain_id: 5
    rpc_urls: ["http://127.0.0.1:9"]
    native: {symbol: ETH}
"""


def _chains(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chains.yaml"
    path.write_text(text)
    return path


def _bomb(levels: int) -> str:
    """The classic alias bomb: 10 ** levels leaves in levels + 2 lines."""
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [
        f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)
    ]
    return "\n".join(lines) + f"\nchains: {{x: *a{levels - 1}}}\n"


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    text = _bomb(6)
    assert len(text.splitlines()) == 7
    with pytest.raises(ConfigError, match="aliases expand to more than 100,000"):
        load_chains(_chains(tmp_path, text), {})


def test_a_self_referencing_alias_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="an alias refers to itself"):
        load_chains(_chains(tmp_path, "chains: &c {x: *c}\n"), {})


def test_small_aliases_and_merge_keys_still_work(tmp_path):
    text = GOOD_CHAIN + "    tokens: &t {}\n  y:\n    <<: &base {chain_id: 6}\n"
    text += '    rpc_urls: ["http://127.0.0.1:9"]\n    native: {symbol: ETH}\n'
    chains = load_chains(_chains(tmp_path, text), {})
    assert chains["y"].chain_id == 6


def test_deep_nesting_is_refused_with_its_position(tmp_path):
    path = _chains(tmp_path, "chains:\n  x: " + "[" * 5_000 + "]" * 5_000)
    with pytest.raises(ConfigError, match=r"line 2, column \d+: nested deeper than 64"):
        load_chains(path, {})


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (GOOD_CHAIN + "    chain_id: 6\n", "chain_id"),
        (GOOD_CHAIN + "  x: {}\n", "x"),
        ("chains: {}\nchains: {}\n", "chains"),
    ],
)
def test_duplicate_keys_are_refused(tmp_path, text, key):
    with pytest.raises(ConfigError, match=f"duplicate key '{key}'"):
        load_chains(_chains(tmp_path, text), {})


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e400"])
def test_block_time_must_be_finite(tmp_path, value):
    path = _chains(tmp_path, GOOD_CHAIN + f"    block_time_s: {value}\n")
    with pytest.raises(ConfigError, match=r"chains\.x\.block_time_s"):
        load_chains(path, {})


def _settings(tmp_path: Path, **env: str):
    path = _chains(tmp_path, LOCAL_CHAINS_YAML)
    return load_settings({"CTRIP_MNEMONIC": TEST_MNEMONIC_OWN, **env}, chains_file=path)


@pytest.mark.parametrize("value", ["１２", "١٢", "1_000", "12\u00a0", "+", "1e3"])
def test_integer_variables_take_ascii_digits_only(tmp_path, value):
    with pytest.raises(ConfigError, match="CTRIP_STATUS_MAX_LAG_S"):
        _settings(tmp_path, CTRIP_STATUS_MAX_LAG_S=value)


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "1e3", "３", "Infinity"])
def test_timeouts_are_finite_ascii_numbers(tmp_path, value):
    with pytest.raises(ConfigError, match="CTRIP_STATUS_PROBE_TIMEOUT_S"):
        _settings(tmp_path, CTRIP_STATUS_PROBE_TIMEOUT_S=value)


def test_durations_are_bounded_so_deadlines_stay_valid_dates(tmp_path):
    with pytest.raises(ConfigError, match="CTRIP_STATUS_MAX_LAG_S"):
        _settings(tmp_path, CTRIP_STATUS_MAX_LAG_S="999999999999999999")
    assert (
        _settings(tmp_path, CTRIP_STATUS_PROBE_TIMEOUT_S=" 2.5 ").status.probe_timeout_s
        == 2.5
    )


@pytest.mark.parametrize(
    "path",
    ["m/44'/60'/0'/0/0", "m/44H/60H/0H/0/7", "m/44'/60'/0'/0", "m/44'/60'/0'/0/1/2"],
)
def test_a_gas_payer_inside_the_deposit_branch_is_refused(tmp_path, path):
    with pytest.raises(ConfigError, match=r"CTRIP_GAS_PAYER_PATH.*deposit branch"):
        _settings(tmp_path, CTRIP_GAS_PAYER_PATH=path)


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("44'/60'", "start with m/"),
        ("m/x", "not an index"),
        ("m/" + "1/" * 40 + "1", "longer than 64"),
    ],
)
def test_a_malformed_gas_payer_path_is_refused_at_start(tmp_path, path, needle):
    with pytest.raises(ConfigError, match=needle):
        _settings(tmp_path, CTRIP_GAS_PAYER_PATH=path)


@pytest.mark.parametrize(
    "path", ["m/44'/60'/1'/0/0", "m/44'/60'/0'/1/0", "m/44'/60'/0'"]
)
def test_gas_payers_outside_the_deposit_branch_are_accepted(tmp_path, path):
    assert _settings(tmp_path, CTRIP_GAS_PAYER_PATH=path).sweep.gas_payer_path == path


@pytest.mark.parametrize(
    "words",
    [
        "abandon " * 11 + "about",
        "legal winner thank year wave sausage worth useful legal winner thank yellow",
        "zoo " * 23 + "vote",
        "scheme spot photo card baby mountain device kick cradle pact join borrow",
        "test test test test test test test test test test test junk",
        "myth like bonus scare over problem client lizard pioneer submit female collect",
        "candy maple cake sugar pudding cream honey rich smooth crumble sweet treat",
        "  Abandon  " * 11 + "about",
    ],
)
def test_public_mnemonics_are_refused_on_real_chains_only(tmp_path, words):
    chains = load_chains(_chains(tmp_path, LOCAL_CHAINS_YAML), {})
    with pytest.raises(
        ConfigError, match="public test mnemonic is refused on chain id 1"
    ):
        KeyRing.for_chain(SecretStr(words), chains["ethereum"])
    if words.split()[0].islower():
        assert KeyRing.for_chain(SecretStr(words), chains["local"]) is not None


def test_the_public_list_holds_every_bip39_test_vector():
    known = public_mnemonics.public_mnemonics()
    assert len(known) == 24 + len(public_mnemonics.DEV_TOOL_MNEMONICS)
    assert TEST_MNEMONIC_OWN not in known


@pytest.fixture
def ctrip_log(caplog):
    caplog.set_level(logging.WARNING, logger="ctrip")
    return caplog


@pytest.mark.parametrize(
    ("mode", "warned"), [(0o600, False), (0o400, False), (0o644, True), (0o604, True)]
)
def test_a_mnemonic_file_others_can_read_is_warned_about(
    tmp_path, ctrip_log, mode, warned
):
    path = tmp_path / "mnemonic"
    path.write_text(TEST_MNEMONIC_OWN + "\n")
    path.chmod(mode)
    settings = _settings(tmp_path, CTRIP_MNEMONIC="", CTRIP_MNEMONIC_FILE=str(path))
    assert settings.mnemonic is not None
    messages = [r.getMessage() for r in ctrip_log.records]
    assert any("readable by" in m for m in messages) == warned, messages
    assert not any(TEST_MNEMONIC_OWN in m for m in messages)


def test_a_mnemonic_file_readable_by_our_own_group_is_not_warned_about(
    tmp_path, ctrip_log
):
    path = tmp_path / "mnemonic"
    path.write_text(TEST_MNEMONIC_OWN)
    path.chmod(0o640)
    os.chown(path, -1, os.getegid())
    _settings(tmp_path, CTRIP_MNEMONIC="", CTRIP_MNEMONIC_FILE=str(path))
    assert not ctrip_log.records


@pytest.mark.skipif(
    os.geteuid() != 0, reason="changing a file's group to another needs root (CI is)"
)
def test_a_mnemonic_file_readable_by_another_group_is_warned_about(tmp_path, ctrip_log):
    path = tmp_path / "mnemonic"
    path.write_text(TEST_MNEMONIC_OWN)
    path.chmod(0o640)
    os.chown(path, -1, os.getegid() + 1)
    _settings(tmp_path, CTRIP_MNEMONIC="", CTRIP_MNEMONIC_FILE=str(path))
    assert "readable by its group" in ctrip_log.records[0].getMessage()


def test_an_oversized_mnemonic_file_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "mnemonic"
    path.write_bytes(b"abandon " * 100_000)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="larger than a mnemonic"):
        _settings(tmp_path, CTRIP_MNEMONIC="", CTRIP_MNEMONIC_FILE=str(path))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:pw@h.example:8443/p?t=1#f", "https://h.example:8443/p?…"),
        ("https://u:pw@[::1/p?t=1", "https://[::1/p?…"),
        ("https://u:pw@[2001:db8::1]/p", "https://[2001:db8::1]/p"),
        (
            "postgresql+psycopg2://ctrip:pw@db:5432/ctrip",
            "postgresql+psycopg2://db:5432/ctrip",
        ),
        ("sqlite:////var/lib/ctrip.db", "sqlite:////var/lib/ctrip.db"),
        ("https://h/\u202e", "https://h/?"),
        ("no scheme at all:pw@", "(not a valid URL)"),
    ],
)
def test_redact_url_keeps_only_scheme_host_port_and_path(url, shown):
    assert redact.redact_url(url) == shown


def test_redact_url_can_hide_the_path_of_rpc_urls():
    assert redact.redact_url("https://mainnet.example/v3/KEY", keep_path=False) == (
        "https://mainnet.example/…"
    )
    assert redact.redact_url(None) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://merchant.example/hook",
        "http://127.0.0.1:8080/hook",
        "https://user:pw@[2001:db8::1]:443/h?x=1",
        "https://bücher.example/",
        "https://" + ".".join(["b" * 63] * 3 + ["c" * 61]) + ":65535/",
    ],
)
def test_valid_webhook_urls_pass(url):
    assert urls.webhook_url_problem(url) is None
