"""Webhook URL validation, shared by `payments create`, CTRIP_WEBHOOK_URL and delivery.

A URL that passes is one httpx can send to and whose every part fits the database: an
http(s) scheme, a host that is a DNS name, an IPv4 address or a bracketed IPv6
address, an optional port 1-65535, and at most MAX_URL_CHARS characters.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

MAX_URL_CHARS = 2_048
# RFC 1035 §2.3.4: at most 253 characters in a name (255 octets on the wire), at most
# 63 in a label. IDNA names are checked in their ASCII (xn--) form.
MAX_HOST_CHARS = 253
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$", re.ASCII)
_PORT = re.compile(r"^[0-9]{1,5}$", re.ASCII)
# Unicode categories that never belong in a URL: controls, format characters (U+202E
# and friends can reorder what a terminal shows), surrogates, private use, unassigned,
# and every kind of space.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def webhook_url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook URL, or None when it can."""
    if len(url) > MAX_URL_CHARS:
        return f"longer than {MAX_URL_CHARS} characters"
    if any(unicodedata.category(c) in _REFUSED_CATEGORIES for c in url):
        return "contains spaces, control or invisible characters"
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "not an http(s) URL with a host"
    host, port = _split_host_port(parts.netloc.rpartition("@")[2])
    if port is not None and (not _PORT.match(port) or not 1 <= int(port) <= 65_535):
        return f"port {port!r} is not a number from 1 to 65535"
    if host.startswith("["):
        return _ipv6_problem(host)
    if not host:
        return "no host"
    if ":" in host:
        return "an IPv6 address must be in brackets, e.g. https://[2001:db8::1]/"
    return _dns_name_problem(host)


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    """(host, port text or None); a bracketed host keeps its brackets."""
    if hostport.startswith("["):
        close = hostport.find("]")
        host, rest = hostport[: close + 1], hostport[close + 1 :]
        if close < 0 or (rest and not rest.startswith(":")):
            return hostport, None  # refused by the IPv6 check
        return host, rest[1:] if rest else None
    host, sep, port = hostport.rpartition(":")
    if not sep or ":" in host:
        return hostport, None
    return host, port


def _ipv6_problem(host: str) -> str | None:
    inner = host[1:-1] if host.endswith("]") else ""
    try:
        if "%" in inner:
            raise ValueError
        ipaddress.IPv6Address(inner)
    except ValueError:
        return f"{host} is not a bracketed IPv6 address (zone ids are not allowed)"
    return None


def _dns_name_problem(host: str) -> str | None:
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return "the host is not a valid international domain name"
    name = host.removesuffix(".")
    if len(name) > MAX_HOST_CHARS:
        return f"the host is longer than {MAX_HOST_CHARS} characters"
    if not all(_LABEL.match(label) for label in name.split(".")):
        return "the host is not a valid name (labels of 1-63 letters, digits or -)"
    return None
