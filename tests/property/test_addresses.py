"""Addresses in chains.yaml: only EIP-55 checksummed ones pass, and every refusal names
its location (`chains.local.tokens.USDC.address`) and says what to use instead."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from ctrip_cli.config import checked_address, load_chains, to_checksum
from ctrip_cli.errors import ConfigError
from tests.property._support import assert_clean_usage_error, row_counts

SHIPPED = Path(__file__).resolve().parents[2] / "ctrip_cli" / "default_chains.yaml"
raw_address = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


@st.composite
def miscased(draw: st.DrawFn) -> str:
    """A checksummed address with the case of some letters flipped."""
    good = to_checksum(draw(raw_address))
    letters = [i for i, c in enumerate(good) if i > 1 and c.isalpha()]
    assume(letters)
    flips = draw(st.sets(st.sampled_from(letters), min_size=1))
    return "".join(c.swapcase() if i in flips else c for i, c in enumerate(good))


not_an_address = st.one_of(
    st.text(max_size=50),
    raw_address.map(lambda a: a[:-1]),
    raw_address.map(lambda a: a + "0"),
    raw_address.map(lambda a: a[2:]),
    raw_address.map(lambda a: a[:10] + "g" + a[11:]),
    st.integers(),
    st.none(),
    st.lists(raw_address, max_size=2),
)


@given(address=raw_address)
def test_checksummed_addresses_pass_unchanged(address):
    good = to_checksum(address)
    assert checked_address(good) == good


@given(address=miscased())
def test_wrong_case_is_refused_with_the_fix(address):
    with pytest.raises(ValueError, match="not a checksummed address; use 0x") as info:
        checked_address(address)
    assert to_checksum(address) in str(info.value)


@given(value=not_an_address)
def test_non_addresses_are_refused(value):
    with pytest.raises(ValueError, match="not an address"):
        checked_address(value)


def _shipped_with(where: str, value: object) -> str:
    doc = yaml.safe_load(SHIPPED.read_text())
    if where == "token":
        doc["chains"]["local"]["tokens"]["USDC"]["address"] = value
    else:
        doc["chains"]["local"]["treasury"] = value
    return yaml.safe_dump(doc)


LOCATIONS = {
    "token": "chains.local.tokens.USDC.address",
    "treasury": "chains.local.treasury",
}


@pytest.mark.parametrize("where", sorted(LOCATIONS))
@given(value=st.one_of(miscased(), not_an_address))
def test_bad_chains_yaml_address_is_located(tmp_path_factory, where, value):
    assume(value is not None or where == "token")  # a null treasury means "not set"
    path = tmp_path_factory.mktemp("addr") / "chains.yaml"
    path.write_text(_shipped_with(where, value))
    with pytest.raises(ConfigError) as info:
        load_chains(path, {})
    assert LOCATIONS[where] in str(info.value)


@given(value=st.one_of(miscased(), not_an_address.filter(lambda v: v is not None)))
def test_cli_refuses_bad_address_before_writing(
    ctrip, cli_env, tmp_path_factory, value
):
    path = tmp_path_factory.mktemp("cli") / "chains.yaml"
    path.write_text(_shipped_with("token", value))
    result = ctrip(
        "--chains",
        str(path),
        "payments",
        "create",
        "--chain",
        "local",
        "--asset",
        "ETH",
        "--amount",
        "1",
    )
    assert_clean_usage_error(result, "chains.local.tokens.USDC.address")
    assert row_counts(cli_env["CTRIP_DATABASE_URL"])["payments"] == 0
