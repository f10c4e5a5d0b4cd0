"""Command-line values checked before anything is written: webhook URLs, references, ids.

Every refusal is an InputError (exit 2) that names the option and shows the value
redacted: a webhook URL may carry credentials or a token in its query.
"""

from __future__ import annotations

import re
import unicodedata

from ctrip_cli import redact, urls
from ctrip_cli.errors import InputError

MAX_REFERENCE_CHARS = 255
# Controls, format characters (U+202E reverses the rest of a table row), surrogates
# (undecodable argv bytes), private use, unassigned, and line/paragraph separators.
_REFUSED_IN_TEXT = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$", re.ASCII)


def check_webhook_url(url: str, *, what: str = "--webhook-url") -> str:
    """`url` if it is a usable webhook URL.

    Raises:
        InputError: naming `what` and the redacted value.
    """
    problem = urls.webhook_url_problem(url)
    if problem is not None:
        raise InputError(f"{what} {redact.redact_url(url)!r}: {problem}")
    return url


def check_reference(reference: str) -> str:
    """`reference` if it is printable text of at most MAX_REFERENCE_CHARS characters.

    Raises:
        InputError: too long, or a control, format or undecodable character.
    """
    if len(reference) > MAX_REFERENCE_CHARS:
        raise InputError(
            f"--reference: {len(reference)} characters; at most {MAX_REFERENCE_CHARS}"
        )
    for i, c in enumerate(reference):
        category = unicodedata.category(c)
        if category in _REFUSED_IN_TEXT:
            what = "bytes that are not UTF-8" if category == "Cs" else f"U+{ord(c):04X}"
            raise InputError(
                f"--reference: {what} at position {i}; use printable text (no "
                "control or invisible formatting characters)"
            )
    return reference


def check_id(value: str, *, what: str, example: str) -> str:
    """`value` if it can be an id (letters, digits, _ and -; at most 40).

    Raises:
        InputError: naming `what`, the value (escaped) and an example.
    """
    if not _ID.match(value):
        raise InputError(f"No such {what} {value!r}: not an id (e.g. {example})")
    return value
