"""chains.yaml and environment validation: every problem names its location."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctrip_cli.config import load_chains, load_settings
from ctrip_cli.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
GOOD = """
chains:
  bsc:
    chain_id: 56
    rpc_urls: ["https://bsc.example/${BSC_KEY}"]
    poa: true
    native: {symbol: BNB, decimals: 18}
    tokens:
      USDT: {address: "0x55d398326f99059fF775485246999027B3197955", decimals: 18}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chains.yaml"
    path.write_text(text)
    return path


def test_shipped_chains_yaml_is_valid_and_matches_builtin_copy():
    chains = load_chains(REPO / "chains.yaml", {})
    assert {"local", "ethereum", "bsc", "polygon"} <= set(chains)
    assert chains["local"].chain_id == 31337
    assert chains["bsc"].poa
    assert chains["polygon"].poa
    assert chains["ethereum"].tokens["USDT"].decimals == 6
    assert chains["bsc"].tokens["USDT"].decimals == 18
    builtin = REPO / "ctrip_cli" / "default_chains.yaml"
    assert builtin.read_text() == (REPO / "chains.yaml").read_text()


def test_env_interpolation_and_secret_urls(tmp_path):
    chains = load_chains(_write(tmp_path, GOOD), {"BSC_KEY": "k3y"})
    url = chains["bsc"].rpc_urls[0]
    assert url.get_secret_value() == "https://bsc.example/k3y"
    assert "k3y" not in repr(chains["bsc"])


def test_missing_env_var_is_located(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"chains\.bsc\.rpc_urls\[0\]: environment variable \$\{BSC_KEY\} is not set",
    ):
        load_chains(_write(tmp_path, GOOD), {})


def test_bad_checksum_is_located_with_fix(tmp_path):
    text = GOOD.replace(
        "0x55d398326f99059fF775485246999027B3197955",
        "0x55d398326f99059ff775485246999027b3197955".upper().replace("0X", "0x"),
    )
    with pytest.raises(ConfigError) as exc:
        load_chains(_write(tmp_path, text), {"BSC_KEY": "k"})
    assert "chains.bsc.tokens.USDT.address: not a checksummed address" in str(exc.value)
    assert "0x55d398326f99059fF775485246999027B3197955" in str(exc.value)


@pytest.mark.parametrize(
    ("mutation", "needle"),
    [
        (("chain_id: 56", "chain_id: -1"), "chains.bsc.chain_id"),
        (("chain_id: 56", "chain_id: abc"), "chains.bsc.chain_id"),
        (("poa: true", "poa: true\n    colour: red"), "chains.bsc.colour"),
        (
            ('rpc_urls: ["https://bsc.example/${BSC_KEY}"]', "rpc_urls: []"),
            "chains.bsc.rpc_urls",
        ),
        (
            ('rpc_urls: ["https://bsc.example/${BSC_KEY}"]', 'rpc_urls: ["ftp://x"]'),
            "chains.bsc.rpc_urls",
        ),
        (("decimals: 18}\n", "decimals: 99}\n"), "chains.bsc.tokens.USDT.decimals"),
        (("native: {symbol: BNB, decimals: 18}", ""), "chains.bsc.native"),
        (("poa: true", "poa: true\n    native_internal: always"), "native_internal"),
        # YAML booleans are not numbers (`true` would be 1 confirmation, 1 wei).
        (
            ("poa: true", "poa: true\n    confirmations: true"),
            "chains.bsc.confirmations",
        ),
        (("poa: true", "poa: true\n    min_gas_price_wei: yes"), "min_gas_price_wei"),
        (
            ("poa: true", "poa: true\n    block_time_s: false"),
            "chains.bsc.block_time_s",
        ),
    ],
)
def test_invalid_values_name_their_location(tmp_path, mutation, needle):
    with pytest.raises(ConfigError) as exc:
        load_chains(_write(tmp_path, GOOD.replace(*mutation)), {"BSC_KEY": "k"})
    assert needle in str(exc.value)


@pytest.mark.parametrize("text", ["chains: [1, 2", "- a\n- b", "chains: 5", "{}"])
def test_not_a_chains_document(tmp_path, text):
    with pytest.raises(ConfigError):
        load_chains(_write(tmp_path, text), {})


def test_settings_from_environment(tmp_path):
    path = _write(tmp_path, GOOD)
    words = "abandon " * 11 + "about"
    settings = load_settings(
        {
            "BSC_KEY": "k",
            "CTRIP_MNEMONIC": words,
            "CTRIP_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_AAAAAAAAAAAA",
        },
        chains_file=path,
    )
    assert settings.mnemonic is not None
    assert words.strip() not in repr(settings)
    assert len(settings.webhooks.secrets) == 2
    assert settings.database_url.get_secret_value().startswith("sqlite:///")


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"CTRIP_MNEMONIC": "one two three"}, "CTRIP_MNEMONIC"),
        ({"CTRIP_MNEMONIC_FILE": "/nonexistent/m"}, "CTRIP_MNEMONIC_FILE"),
        ({"CTRIP_WEBHOOK_SECRET": "hunter2"}, "CTRIP_WEBHOOK_SECRET[0]"),
        ({"CTRIP_WEBHOOK_URL": "not a url"}, "CTRIP_WEBHOOK_URL"),
        (
            {"CTRIP_UNDERPAYMENT_TOLERANCE_BPS": "lots"},
            "CTRIP_UNDERPAYMENT_TOLERANCE_BPS",
        ),
        ({"CTRIP_UNDERPAYMENT_TOLERANCE_BPS": "20000"}, "underpayment_tolerance_bps"),
    ],
)
def test_bad_environment_is_named(tmp_path, env, needle):
    with pytest.raises(ConfigError) as exc:
        load_settings({"BSC_KEY": "k", **env}, chains_file=_write(tmp_path, GOOD))
    assert needle in str(exc.value)
    assert "hunter2" not in str(exc.value)


def test_yaml_error_does_not_echo_the_line(tmp_path):
    text = 'chains:\n  bsc: {rpc_urls: ["https://x.example/?apikey=SUPERSECRET"\n'
    with pytest.raises(ConfigError) as exc:
        load_chains(_write(tmp_path, text), {})
    assert "not valid YAML (line" in str(exc.value)
    assert "SUPERSECRET" not in str(exc.value)


def test_native_internal_defaults_to_auto_and_takes_each_mode(tmp_path):
    chains = load_chains(_write(tmp_path, GOOD), {"BSC_KEY": "k"})
    assert chains["bsc"].native_internal == "auto"
    for mode in ("auto", "traces", "reconcile", "off"):
        text = GOOD.replace("poa: true", f"poa: true\n    native_internal: {mode}")
        chains = load_chains(_write(tmp_path, text), {"BSC_KEY": "k"})
        assert chains["bsc"].native_internal == mode
