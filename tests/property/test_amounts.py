"""Amounts: exact parsing of any decimal string, and every bad one refused with its value
named, exit 2 and nothing written."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ctrip_cli.errors import InputError
from ctrip_cli.money import format_units, parse_units
from tests.property._support import all_output, assert_clean_usage_error, row_counts

_VALID = re.compile(r"^[0-9]{1,60}(\.[0-9]{1,36})?$")
# Anything argv can carry: no NUL, no lone surrogates.
argv_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
)
amount_like = st.one_of(
    argv_text,
    st.from_regex(r"\A[-+ ]?[0-9]{0,70}([.,][0-9]{0,40})?([eE][-+]?[0-9]{1,3})?\s?\Z"),
    st.sampled_from(
        ["NaN", "inf", "-0", "0.0", "0x10", "1_000", "１２", "٣", "1.", ".5"]
    ),
)


@given(units=st.integers(min_value=1, max_value=10**60), decimals=st.integers(0, 36))
def test_format_then_parse_is_exact(units, decimals):
    assert parse_units(format_units(units, decimals), decimals) == units


@given(text=amount_like, decimals=st.integers(0, 36))
def test_parse_units_accepts_exactly_plain_decimals(text, decimals):
    raw = text.strip()
    if (
        not _VALID.match(raw)
        or len(raw.partition(".")[2]) > decimals
        or not raw.strip("0.")
    ):
        with pytest.raises(InputError) as info:
            parse_units(text, decimals)
        assert repr(text) in str(info.value)
        assert str(info.value).startswith("--amount ")
        return
    units = parse_units(text, decimals)
    assert _VALID.match(raw), raw
    assert units > 0
    whole, _, frac = raw.partition(".")
    assert len(frac) <= decimals
    assert units == int(whole) * 10**decimals + int((frac or "0").ljust(decimals, "0"))


def _create(ctrip, asset: str, amount: str):
    return ctrip(
        "payments",
        "create",
        "--chain",
        "local",
        "--asset",
        asset,
        f"--amount={amount}",
        "--json",
    )


@pytest.mark.parametrize("asset", ["USDC", "ETH"])
@given(text=amount_like)
def test_cli_amount_is_exact_or_refused_with_nothing_written(
    ctrip, cli_env, asset, text
):
    decimals = 6 if asset == "USDC" else 18
    before = row_counts(cli_env["CTRIP_DATABASE_URL"])
    result = _create(ctrip, asset, text)
    if result.exit_code == 0:
        payment = json.loads(result.stdout)
        assert payment["amount_base_units"] == str(parse_units(text, decimals))
        assert (
            row_counts(cli_env["CTRIP_DATABASE_URL"])["payments"]
            == before["payments"] + 1
        )
        return
    assert_clean_usage_error(result)
    # The message names the option and the value (compared without Rich's line wrapping).
    flat = re.sub(r"\s+", "", all_output(result))
    assert "--amount" in flat
    assert re.sub(r"\s+", "", repr(text)) in flat or not text.strip()
    assert row_counts(cli_env["CTRIP_DATABASE_URL"]) == before


@given(
    whole=st.integers(0, 10**6),
    frac=st.text("0123456789", min_size=7, max_size=20).filter(lambda f: f.rstrip("0")),
)
def test_cli_refuses_more_decimals_than_the_token_has(ctrip, cli_env, whole, frac):
    text = f"{whole}.{frac}"
    assume(len(frac.rstrip("0")) > 6 or len(frac) > 6)
    before = row_counts(cli_env["CTRIP_DATABASE_URL"])
    result = _create(ctrip, "USDC", text)
    assert_clean_usage_error(result, "more than 6 decimal places", repr(text))
    assert row_counts(cli_env["CTRIP_DATABASE_URL"]) == before
