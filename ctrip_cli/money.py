"""Exact conversions between decimal strings and integer base units. No floats, ever."""

from __future__ import annotations

import re

from ctrip_cli.errors import InputError

_AMOUNT = re.compile(r"^(\d{1,78})(?:\.(\d{1,36}))?$", re.ASCII)
# Token amounts are uint256 on chain; NUMERIC(78,0) holds every one of them.
MAX_UNITS = 2**256 - 1


def parse_units(text: str, decimals: int, *, what: str = "--amount") -> int:
    """Parse a positive decimal string into base units.

    Raises:
        InputError: garbage, zero, negative, or more decimals than the asset has.
    """
    raw = text.strip()
    match = _AMOUNT.match(raw)
    if match is None:
        raise InputError(
            f"{what} {text!r}: not a positive decimal number (use digits and an "
            "optional '.', e.g. 12.5)"
        )
    whole, frac = match.group(1), match.group(2) or ""
    if len(frac) > decimals:
        raise InputError(
            f"{what} {text!r}: more than {decimals} decimal places for this asset"
        )
    units: int = int(whole) * 10**decimals + int(frac.ljust(decimals, "0") or "0")
    if units <= 0:
        raise InputError(f"{what} {text!r}: must be greater than zero")
    if units > MAX_UNITS:
        raise InputError(
            f"{what} {text!r}: larger than any on-chain amount (2**256 - 1)"
        )
    return units


def format_units(units: int, decimals: int) -> str:
    """Base units as a plain decimal string without trailing zeros ("12.5", "3")."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    frac_text = str(frac).rjust(decimals, "0").rstrip("0") if decimals else ""
    return f"{sign}{whole}.{frac_text}" if frac_text else f"{sign}{whole}"


_DURATION = re.compile(r"^(\d{1,9})([smhd]?)$", re.ASCII)
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration_s(text: str, *, what: str, max_s: int | None = None) -> int:
    """Parse `90s`, `30m`, `2h`, `1d` (or bare seconds) into whole seconds.

    Raises:
        InputError: not a positive duration, or longer than `max_s`.
    """
    match = _DURATION.match(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise InputError(
            f"{what} {text!r}: not a positive duration (e.g. 90s, 30m, 2h, 1d)"
        )
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if max_s is not None and seconds > max_s:
        raise InputError(f"{what} {text!r}: longer than the limit of {max_s:,}s")
    return seconds
