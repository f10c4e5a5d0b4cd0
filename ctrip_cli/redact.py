"""Showing URLs without their secrets: one redaction for webhook, database and RPC URLs.

What stays: scheme, host and port (and, for webhook and database URLs, the path).
What goes: user name and password, the query (`?…` marks that one was there) and the
fragment. A URL that does not parse loses the same parts by plain text rules, so an
error can still show the value that was wrong.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

INVALID = "(not a valid URL)"
# scheme://authority rest, where the authority ends at the first / ? or #.
_ROUGH = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)([^?#]*)(.*)$", re.DOTALL)


def redact_url(url: str | None, *, keep_path: bool = True) -> str | None:
    """`url` as it may be shown in output, logs and stored errors (None stays None).

    `keep_path=False` also hides the path (RPC providers put API keys there, e.g.
    `/v3/<key>`), leaving `/…` when there was one.
    """
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _printable(_rough(url, keep_path=keep_path))
    if not parts.scheme or not parts.netloc:
        return _printable(_rough(url, keep_path=keep_path))
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    path = parts.path
    if not keep_path and path not in ("", "/"):
        path = "/…"
    return _printable(
        f"{parts.scheme}://{netloc}{path}" + ("?…" if parts.query else "")
    )


def _rough(url: str, *, keep_path: bool) -> str:
    """The same redaction by text rules, for a URL that does not parse."""
    match = _ROUGH.match(url)
    if match is None:
        return INVALID
    scheme, authority, path, rest = match.groups()
    host = authority.rpartition("@")[2]
    if not keep_path and path not in ("", "/"):
        path = "/…"
    return f"{scheme}{host}{path}" + ("?…" if rest.startswith("?") else "")


def _printable(shown: str) -> str:
    # Control and format characters could rewrite the terminal line they are shown on.
    return "".join(c if c.isprintable() else "?" for c in shown)
