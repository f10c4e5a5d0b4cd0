"""Exact decimal ↔ base-unit conversions."""

from __future__ import annotations

import pytest

from ctrip_cli.errors import InputError
from ctrip_cli.money import format_units, parse_duration_s, parse_units


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [
        ("1.5", 18, 1_500_000_000_000_000_000),
        ("12.5", 6, 12_500_000),
        ("0.000001", 6, 1),
        ("7", 0, 7),
        (
            "115792089237316195423570985008687907853269984665640564039457",
            18,
            115792089237316195423570985008687907853269984665640564039457 * 10**18,
        ),
    ],
)
def test_parse_units_is_exact(text, decimals, units):
    assert parse_units(text, decimals) == units
    assert parse_units(format_units(units, decimals), decimals) == units


@pytest.mark.parametrize(
    "text", ["0", "0.0", "-1", "abc", "1e3", "NaN", "inf", "1.", ".5", "1,5", ""]
)
def test_parse_units_rejects_non_amounts(text):
    with pytest.raises(InputError) as exc:
        parse_units(text, 6)
    assert repr(text) in str(exc.value)


def test_parse_units_rejects_extra_decimals_even_zeros():
    with pytest.raises(InputError, match="more than 6 decimal places"):
        parse_units("1.0000000", 6)


def test_format_units_drops_trailing_zeros():
    assert format_units(12_500_000, 6) == "12.5"
    assert format_units(3 * 10**18, 18) == "3"
    assert format_units(0, 18) == "0"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("45", 45)],
)
def test_parse_duration(text, seconds):
    assert parse_duration_s(text, what="--expires-in") == seconds


@pytest.mark.parametrize("text", ["0m", "soon", "-5m", "1w", "1.5h"])
def test_parse_duration_rejects(text):
    with pytest.raises(InputError, match="--expires-in"):
        parse_duration_s(text, what="--expires-in")


def test_amounts_up_to_uint256_are_accepted_and_beyond_refused():
    assert parse_units(str(2**256 - 1), 0) == 2**256 - 1
    with pytest.raises(InputError, match="larger than any on-chain amount"):
        parse_units(str(2**256), 0)
