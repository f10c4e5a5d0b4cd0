"""What ctrip has learnt about one RPC endpoint's limits, and how it reads node errors.

Limits are kept in the database per chain and per hash of the endpoint URL (never the
URL), so a cron pass does not relearn them by failing. Error texts come from the nodes'
and providers' own sources, cited beside each pattern; this is the only place that
matches them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


def endpoint_key(url: str) -> str:
    """A stable, non-reversible name for an endpoint (URLs may carry API keys)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


# The limits a refusal teaches. They are forgotten RELEARN_AFTER_S after they last
# changed, so an endpoint whose plan or version got better is used fully again; the
# next pass meets the refusal once more if it still holds, and learns it again.
REFUSALS = (
    "max_batch",
    "refused_batch",
    "batching",
    "max_response_bytes",
    "logs_max_range",
    "logs_refused",
    "unsupported",
)
RELEARN_AFTER_S = 86_400.0


@dataclass(slots=True)
class EndpointLimits:
    """Learnt limits; None means "not seen yet"."""

    max_batch: int | None = (
        None  # calls per batch: the largest that worked after a refusal
    )
    refused_batch: int | None = None  # the smallest batch refused as too large
    batching: bool = True
    max_response_bytes: int | None = None  # a response cap the node enforced
    logs_max_range: int | None = None  # blocks per eth_getLogs
    logs_refused: bool = False  # eth_getLogs refused even for one block
    unsupported: list[str] = field(default_factory=list)  # methods it lacks (-32601)
    bytes_per_call: dict[str, int] = field(default_factory=dict)  # measured averages
    learnt_at: float | None = None  # Unix time the refusals last changed

    def refusals(self) -> tuple[Any, ...]:
        """What refusals taught (not what was measured), comparable."""
        return tuple(
            tuple(v) if isinstance(v := getattr(self, n), list) else v for n in REFUSALS
        )

    def forget_refusals(self) -> None:
        """Back to "not seen yet" for every refusal; measured sizes are kept."""
        fresh = EndpointLimits()
        for name in REFUSALS:
            setattr(self, name, getattr(fresh, name))
        self.learnt_at = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> EndpointLimits:
        out = cls()
        if not isinstance(data, dict):
            return out
        for name in cls.__slots__:
            if name in data:
                setattr(out, name, data[name])
        if not isinstance(out.unsupported, list):
            out.unsupported = []
        if not isinstance(out.bytes_per_call, dict):
            out.bytes_per_call = {}
        if isinstance(out.learnt_at, bool) or not isinstance(
            out.learnt_at, int | float
        ):
            out.learnt_at = None
        return out

    def summary(self) -> dict[str, object]:
        """The limits an operator cares about, for `status`."""
        out: dict[str, object] = {}
        if not self.batching:
            out["batching"] = False
        if self.max_batch is not None:
            out["max_batch"] = self.max_batch
        if self.max_response_bytes is not None:
            out["max_response_bytes"] = self.max_response_bytes
        if self.logs_refused:
            out["eth_getLogs"] = "refused"
        elif self.logs_max_range is not None:
            out["logs_max_range"] = self.logs_max_range
        if self.unsupported:
            out["unsupported"] = sorted(self.unsupported)
        return out


class Kind(StrEnum):
    """What a JSON-RPC error (or an HTTP answer) means for the caller."""

    BATCH_TOO_LARGE = "batch too large"
    NO_BATCHING = "no batching"
    RESPONSE_TOO_LARGE = "response too large"
    RATE_LIMITED = "rate limited"
    METHOD_MISSING = "method missing"
    LOGS_TOO_LARGE = "logs too large"
    OTHER = "other"


# geth rpc/handler.go + rpc/errors.go: errcodeResponseTooLarge = -32003, "response too
# large"; a batch over BatchRequestLimit (node/defaults.go: 1000) gets one error object
# {"code": -32600, "message": "batch too large"}; BatchResponseMaxSize 25,000,000 bytes.
_BATCH_TOO_LARGE = re.compile(
    r"batch (too large|size|limit)|too many (requests|calls) in (the )?batch|"
    r"exceeds? (the )?(max(imum)? )?batch|batch request.*(exceed|limit)",
    re.I,
)
# Providers that serve no batches at all (e.g. "batch requests are not supported",
# Cloudflare-style gateways; some answer "batch request not allowed").
_NO_BATCHING = re.compile(
    r"batch(ed)? (requests? )?(is |are )?(not supported|not allowed|disabled)|"
    r"does not support batch|batching (is )?(not supported|disabled)",
    re.I,
)
_RESPONSE_TOO_LARGE = re.compile(r"response (is )?too (large|big)|response size", re.I)
# Infura/QuickNode/Alchemy gateways answer HTTP 200 with a per-call error:
# -32029 "Rate limit exceeded", -32005 "limit exceeded" / "daily request count exceeded".
_RATE = re.compile(
    r"rate limit|too many requests|request rate|capacity exceeded|"
    r"requests? per second|compute units? per second|throughput",
    re.I,
)
# eth_getLogs caps, as nodes and providers word them: geth/Erigon "query exceeds max
# block range", Infura "query returned more than 10000 results", Alchemy "Log response
# size exceeded ... up to a 2K block range", QuickNode "eth_getLogs is limited to a
# 10,000 range" (free plan: 5), Ankr "block range is too wide", BNB Chain "limit
# exceeded" (bnb-chain/bsc#1215: refused outright on the public endpoints).
_LOGS_TOO_LARGE = re.compile(
    r"more than \d+|too many|limit(ed)? (exceeded|to)|range|exceed|"
    r"response size|query timeout|too wide|too large",
    re.I,
)
# The cap a refusal names, in the wordings above (first group: the number; second:
# an optional "K" for thousands).
_RANGE_NUMBERS = (
    re.compile(r"limit of ([\d,]+)\s*(k)?", re.I),  # Infura
    re.compile(r"limited to a ([\d,]+)\s*(k)?", re.I),  # QuickNode
    re.compile(r"max(?:imum)? block range (?:of |is )?([\d,]+)\s*(k)?", re.I),  # geth
    re.compile(r"up to an? ([\d,]+)\s*(k)?\s*block", re.I),  # Alchemy
)
_BATCH_NUMBER = re.compile(r"batch (?:size )?limit (?:of )?(\d+)", re.I)  # Erigon
_SUGGESTED_RANGE = re.compile(r"\[(0x[0-9a-fA-F]+),\s*(0x[0-9a-fA-F]+)\]")


def classify(method: str, code: Any, message: str) -> Kind:
    """What an error answer to one call of `method` means."""
    # -32003 alone is EIP-1474's "transaction rejected" (anvil: insufficient funds).
    too_large = _RESPONSE_TOO_LARGE.search(message)
    if too_large and (method != "eth_getLogs" or code == -32003):
        return Kind.RESPONSE_TOO_LARGE
    if _NO_BATCHING.search(message):
        return Kind.NO_BATCHING
    if _BATCH_TOO_LARGE.search(message):
        return Kind.BATCH_TOO_LARGE
    if code == -32029 or code == 429 or _RATE.search(message):
        return Kind.RATE_LIMITED
    if code == -32601 or _names_missing_method(method, message):
        return Kind.METHOD_MISSING
    if method == "eth_getLogs" and (code == -32005 or _LOGS_TOO_LARGE.search(message)):
        return Kind.LOGS_TOO_LARGE
    if code == -32005 and "limit" in message.lower():
        return Kind.RATE_LIMITED
    return Kind.OTHER


_ABSENT = re.compile(
    r"not found|not supported|does not exist|not available|unsupported|not allowed|"
    r"not enabled|disabled",
    re.I,
)


def _names_missing_method(method: str, message: str) -> bool:
    """A refusal that says the method itself is absent (Alchemy: "Unsupported method:
    trace_block ...", QuickNode: "debug_traceBlockByHash is not available on the Free
    tier"), not that something the call needs is: geth's "historical state not
    available in path scheme yet" or a pruned node's "state ... is not available" are
    ordinary errors, never remembered as a missing method."""
    named = method.lower() in message.lower() or re.search(r"\bmethod\b", message, re.I)
    return bool(named and _ABSENT.search(message))


def logs_range_hint(message: str, asked: int) -> int | None:
    """The block range a refusal of an eth_getLogs of `asked` blocks suggests, if any."""
    suggested = _SUGGESTED_RANGE.search(message)
    if suggested:
        lo, hi = (int(x, 16) for x in suggested.groups())
        if 0 <= hi - lo + 1 < asked:
            return max(hi - lo + 1, 1)
    for pattern in _RANGE_NUMBERS:
        number = pattern.search(message)
        if number:
            value = int(number.group(1).replace(",", "")) * (
                1_000 if number.group(2) else 1
            )
            if 0 < value < asked:
                return value
    return None


def batch_limit_hint(message: str) -> int | None:
    """The batch size a refusal names (Erigon: "batch limit 100 exceeded")."""
    number = _BATCH_NUMBER.search(message)
    return int(number.group(1)) if number and int(number.group(1)) > 0 else None
