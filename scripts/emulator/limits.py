"""What a provider limits and how it words each refusal, with named presets.

Every limit and error text below is taken from the node's source or from a captured
answer of the provider (the comment beside it names where). A profile is one frozen
`Limits`; presets are starting points, and `Limits.replace(...)` (or keyword overrides
of `Emulator`) makes any combination: a geth node with 50 ms latency, a hosted plan
whose logs cap is 5 blocks, a public node behind a lagging balancer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

BatchTooLarge = Literal["geth", "erigon", "http413"]
NoBatching = Literal["zkevm", "optimism"]
RangeWording = Literal["alchemy", "quicknode", "quicknode-free", "infura", "max-range"]
RateStyle = Literal["429-seconds", "429-date", "jsonrpc"]
Truncate = Literal["close", "short"]


@dataclass(frozen=True)
class Limits:
    """One endpoint's limits; None everywhere is a pass-through proxy."""

    # -- batches --
    # Calls per JSON-RPC batch; over it the whole batch is refused, worded as
    # `batch_too_large` says.
    max_batch_calls: int | None = None
    batch_too_large: BatchTooLarge = "geth"
    # False: any batch of 2 or more calls is refused (`no_batching` wording).
    batching: bool = True
    no_batching: NoBatching = "zkevm"
    # geth's BatchResponseMaxSize: once the results of a batch add up past this many
    # bytes, every call not yet answered gets -32003 "response too large".
    max_batch_response_bytes: int | None = None
    # -- methods --
    missing_methods: frozenset[str] = frozenset()
    # -- eth_getLogs --
    logs_refused: bool = False  # every eth_getLogs: -32005 "limit exceeded" (BSC)
    logs_max_blocks: int | None = None  # toBlock - fromBlock + 1 above this: refused
    logs_range_wording: RangeWording = "max-range"
    logs_max_results: int | None = None  # more logs than this: refused
    # -- rate limit: calls (not HTTP requests) in any 1 s window --
    rate_limit_calls_per_s: int | None = None
    rate_limit_style: RateStyle = "429-seconds"
    rate_limit_code: int = -32005
    rate_limit_message: str = "limit exceeded"
    # -- a load balancer with one lagging backend --
    # Every `lag_every`-th eth_getLogs call is served by a backend that knows the
    # headers (served by the others) but not yet the logs of the last `lag_blocks`
    # blocks: it drops them from its answer, `[]` where a block had only those.
    lagging_logs: bool = False
    lag_blocks: int = 3
    lag_every: int = 2
    # -- a body cut off past this many bytes --
    truncate_after_bytes: int | None = None
    truncate: Truncate = "close"
    # -- a fixed delay per HTTP request (every profile) --
    latency_s: float = 0.0
    # Free-form note printed by the CLI and kept in the stats.
    note: str = field(default="", compare=False)

    def replace(self, **changes: Any) -> Limits:
        """A copy with `changes`; unknown names raise TypeError naming them."""
        return dataclasses.replace(self, **changes)


# geth node/defaults.go: BatchRequestLimit 1000, BatchResponseMaxSize 25 * 1000 * 1000.
GETH_BATCH_CALLS = 1000
GETH_BATCH_RESPONSE_BYTES = 25_000_000

PRESETS: dict[str, Limits] = {
    "unlimited": Limits(note="pass-through"),
    # geth's own defaults (node/defaults.go, rpc/handler.go handleBatch).
    "geth": Limits(
        max_batch_calls=GETH_BATCH_CALLS,
        batch_too_large="geth",
        max_batch_response_bytes=GETH_BATCH_RESPONSE_BYTES,
        note="geth defaults: 1000 calls a batch, 25 MB of results a batch",
    ),
    # A hosted plan: 100 calls a batch, answered as Erigon's default
    # --rpc.batch.limit 100 answers (hosted fleets run Erigon: llamanodes/web3-proxy
    # #231), logs capped by range and by count (Infura's 10,000 results).
    "hosted": Limits(
        max_batch_calls=100,
        batch_too_large="erigon",
        logs_max_blocks=1000,
        logs_range_wording="max-range",
        logs_max_results=10_000,
        note="100 calls a batch, eth_getLogs: 1000 blocks, 10,000 results",
    ),
    # Alchemy's free tier: 10 blocks per eth_getLogs (docs: eth_getLogs block ranges
    # per plan tier, "Free | 10"), in its own wording.
    "alchemy-free": Limits(
        logs_max_blocks=10,
        logs_range_wording="alchemy",
        note="eth_getLogs: 10 blocks (Alchemy free)",
    ),
    # QuickNode: "the block range limit for this RPC method is 5 blocks for users on
    # free Discover plans and 10,000 blocks for those on paid plans" (docs, eth_getLogs).
    "quicknode-free": Limits(
        logs_max_blocks=5,
        logs_range_wording="quicknode-free",
        note="eth_getLogs: 5 blocks (QuickNode Discover), HTTP 413",
    ),
    "quicknode": Limits(
        logs_max_blocks=10_000,
        logs_range_wording="quicknode",
        note="eth_getLogs: 10,000 blocks (QuickNode paid), HTTP 413",
    ),
    # Infura: "A maximum of 10,000 results can be returned by a single query (code
    # -32005)" (docs, quoted in INFURA/infura#237).
    "infura": Limits(
        logs_max_results=10_000,
        note="eth_getLogs: 10,000 results (Infura)",
    ),
    # A public node: no eth_getBlockReceipts (geth before 1.13: base/node#153;
    # coreth public API: ava-labs/avalanchego#2999) and rate-limited with HTTP 429
    # ("Spikes above 30 rps return HTTP 429", Ankr's public plan).
    "public": Limits(
        missing_methods=frozenset({"eth_getBlockReceipts"}),
        rate_limit_calls_per_s=30,
        rate_limit_style="429-seconds",
        note="no eth_getBlockReceipts, 30 calls/s then HTTP 429 Retry-After: seconds",
    ),
    "public-date": Limits(
        missing_methods=frozenset({"eth_getBlockReceipts"}),
        rate_limit_calls_per_s=30,
        rate_limit_style="429-date",
        note="no eth_getBlockReceipts, 30 calls/s then HTTP 429 Retry-After: date",
    ),
    # A gateway that answers HTTP 200 and refuses each call over the budget with a
    # JSON-RPC error: -32005 "limit exceeded" (bnb-chain/docs-site#621), or the
    # -32029 wording (`rate_limit_code=-32029, rate_limit_message="Rate limit
    # exceeded"`; OnFinality and MCP gateways use -32029 for too many requests).
    "gateway": Limits(
        missing_methods=frozenset({"eth_getBlockReceipts"}),
        rate_limit_calls_per_s=30,
        rate_limit_style="jsonrpc",
        note="no eth_getBlockReceipts, 30 calls/s then a JSON-RPC error per call",
    ),
    # No batching at all: Polygon zkEVM / CDK nodes with batch requests disabled
    # (0xPolygon/cdk-validium-node#50: "batch requests are disabled").
    "no-batch": Limits(batching=False, note="a batch of 2+ calls is refused"),
    # BNB Chain's official public endpoints: eth_getLogs turned off, answered
    # {"code": -32005, "message": "limit exceeded"} even for one block
    # (bnb-chain/bsc#1215, bnb-chain/docs-site#621).
    "bsc-public": Limits(logs_refused=True, note="eth_getLogs refused (BSC dataseed)"),
    # A load-balanced endpoint with one lagging backend (scripts/chaos/rpc_proxy.py
    # models the same balancer for blocks and nonces).
    "lagging": Limits(lagging_logs=True, note="every 2nd eth_getLogs misses new logs"),
    # A response cut off mid-body (a proxy or balancer dropping the connection).
    "truncated": Limits(truncate_after_bytes=65_536, note="bodies cut at 64 KiB"),
}


# The same plan behind a gateway that refuses an oversized batch body with HTTP 413.
PRESETS["hosted-413"] = PRESETS["hosted"].replace(
    batch_too_large="http413",
    note="100 calls a batch (HTTP 413 over it), eth_getLogs capped",
)


def preset(name: str) -> Limits:
    """The named preset; an unknown name raises ValueError listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        raise ValueError(f"unknown profile {name!r} (known: {known})") from None


def error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def batch_too_large(limits: Limits, calls: int, first_id: Any) -> tuple[int, Any]:
    """(HTTP status, JSON body) refusing a batch of `calls` over `max_batch_calls`."""
    if limits.batch_too_large == "geth":
        # rpc/handler.go respondWithBatchTooLarge: one message in an array, carrying
        # the first call's id; invalidRequestError is -32600 (rpc/errors.go),
        # errMsgBatchTooLarge = "batch too large".
        return 200, [_entry(first_id, error(-32600, "batch too large"))]
    if limits.batch_too_large == "erigon":
        # erigontech/erigon#7072, #7090: {"jsonrpc":"2.0","id":null,"error":{"code":
        # -32000,"message":"batch limit 100 exceeded: 142 requests given"}}
        message = (
            f"batch limit {limits.max_batch_calls} exceeded: {calls} requests given"
        )
        return 200, _entry(None, error(-32000, message))
    # nginx in front of a node: 413 Request Entity Too Large (blockscout#3709).
    return 413, None


def no_batching(limits: Limits) -> dict[str, Any]:
    """The single answer to a batch where batching is off."""
    if limits.no_batching == "optimism":
        # ethereum-optimism/optimism#2021: proxyd answered a batch with -32700
        # "parse error" and id null.
        return _entry(None, error(-32700, "parse error"))
    # zkevm-node / cdk-validium-node: InvalidRequest (-32600) "batch requests are
    # disabled" (0xPolygon/cdk-validium-node#50).
    return _entry(None, error(-32600, "batch requests are disabled"))


def method_missing(method: str) -> dict[str, Any]:
    # geth rpc/errors.go methodNotFoundError: -32601 "the method %s does not
    # exist/is not available" (the text base/node#153 quotes for eth_getBlockReceipts).
    return error(-32601, f"the method {method} does not exist/is not available")


def logs_refused() -> dict[str, Any]:
    # bnb-chain/bsc#1215: {"code": -32005, "message": "limit exceeded"}.
    return error(-32005, "limit exceeded")


def logs_range(limits: Limits, lo: int, hi: int) -> tuple[int, dict[str, Any]]:
    """(HTTP status, error) refusing eth_getLogs over `logs_max_blocks`."""
    cap = limits.logs_max_blocks or 0
    wording = limits.logs_range_wording
    if wording == "alchemy":
        # BobTheBuidler/dank_mids#772, risc0/risc0-ethereum#656: -32600 "You can make
        # eth_getLogs requests with up to a 500 block range. Based on your parameters,
        # this block range should work: [0x123c9b2, 0x123cba5]"
        hint = f"[{hex(lo)}, {hex(lo + cap - 1)}]"
        return 200, error(
            -32600,
            f"You can make eth_getLogs requests with up to a {cap} block range. "
            f"Based on your parameters, this block range should work: {hint}",
        )
    if wording == "quicknode":
        # OffchainLabs/arbitrum-sdk#609: HTTP 413 with {"code":-32614,"message":
        # "eth_getLogs is limited to a 10,000 range"}
        return 413, error(-32614, f"eth_getLogs is limited to a {cap:,} range")
    if wording == "quicknode-free":
        # QuickNode Discover plan, HTTP 413: {"code":-32615,"message":"eth_getLogs is
        # limited to a 5 range, upgrade from discover plan ..."} (captured answers
        # quoted by QuickNode users; erpc/erpc#249 matches the same text).
        return 413, error(
            -32615,
            f"eth_getLogs is limited to a {cap:,} range, upgrade from discover plan "
            "to increase the limit",
        )
    if wording == "infura":
        # INFURA/infura#237: {"code":-32602,"message":"range 1000000 exceeds limit of
        # 10000"}
        return 200, error(-32602, f"range {hi - lo + 1} exceeds limit of {cap}")
    # foundry-rs/foundry#12687: "error code -32602: query exceeds max block range
    # 100000"
    return 200, error(-32602, f"query exceeds max block range {cap}")


def logs_results(limits: Limits) -> dict[str, Any]:
    # status-im/nimbus-eth2#1823, aurora-is-near/aurora-relayer#327 (Infura): code
    # -32005, message "query returned more than 10000 results".
    return error(-32005, f"query returned more than {limits.logs_max_results} results")


def response_too_large() -> dict[str, Any]:
    # geth rpc/errors.go: errcodeResponseTooLarge = -32003, errMsgResponseTooLarge =
    # "response too large"; rpc/handler.go handleBatch answers every remaining call.
    return error(-32003, "response too large")


def rate_limited(limits: Limits) -> dict[str, Any]:
    return error(limits.rate_limit_code, limits.rate_limit_message)


def rate_limited_body() -> dict[str, Any]:
    # The body beside HTTP 429, as OnFinality sends it (-32029 with the reason).
    return _entry(None, error(-32029, "Too Many Requests"))


def _entry(call_id: Any, err: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "error": err}
