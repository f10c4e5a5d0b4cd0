"""Native coin forwarded by contracts: internal value transfers read from block traces.

A payment that reaches a deposit address through a contract's CALL has no top-level
transaction to the address and no log. Two trace APIs show it, tried in this order
and remembered per endpoint when it lacks one (`EndpointLimits.unsupported`):

* `trace_block` (OpenEthereum-style: Erigon, Nethermind, Reth, anvil): a flat list of
  frames per block with their `traceAddress` path and the block hash;
* `debug_traceBlockByHash` with `{"tracer": "callTracer"}` (geth, Erigon, Reth,
  Nethermind, anvil): a tree of call frames per transaction. By hash, so the frames
  and the hash they are recorded with come from the same block.

Only value that really moved counts: CALL frames (and SELFDESTRUCT beneficiaries),
never a frame that reverted or sits inside one that did. The top-level frame
(position 0) is the transaction itself, which the top-level native read records.

A frame's position is its index in the transaction's frames in depth-first order
(both APIs list the same frames in that order), so both APIs key a transfer alike.
It is stored as `log_index = -(1000 + position)`: -1 is a top-level native transfer,
logs are >= 0, so (chain, tx hash, log index) stays unique.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

from ctrip_cli.chain import parse
from ctrip_cli.chain.client import NativeTransfer
from ctrip_cli.chain.rpc import Call, RpcMethodUnsupportedError, RpcTransport
from ctrip_cli.errors import RpcRejectedError, TracesUnavailableError

log = logging.getLogger("ctrip.rpc")
TRACE_BLOCK, DEBUG_TRACE = "trace_block", "debug_traceBlockByHash"
METHODS = (TRACE_BLOCK, DEBUG_TRACE)
POSITION_BASE = 1000
CALL_TRACER = {"tracer": "callTracer"}


def log_index(position: int) -> int:
    """The transfers-table log index of the frame at `position` (>= 1)."""
    return -(POSITION_BASE + position)


def internal_transfers(
    rpc: RpcTransport,
    numbers: Sequence[int],
    wanted: Collection[str],
    *,
    block_hashes: Callable[[Sequence[int]], dict[int, str | None]],
    chain: str,
    required: bool,
) -> list[NativeTransfer] | None:
    """Internal native transfers to `wanted` (lowercase) in blocks `numbers`;
    `block_hashes` names the blocks for the API that reads them by hash.

    Returns None when the endpoint answers no trace method (remembered, so the next
    pass does not ask again) and `required` is False.

    Raises:
        TracesUnavailableError: `required` and the endpoint answers neither method.
        RpcRejectedError: a block is missing (the node lags) or an answer is malformed.
    """
    for method in METHODS:
        if method in rpc.preferred.limits.unsupported:
            continue
        try:
            return _read(rpc, method, numbers, wanted, block_hashes)
        except RpcMethodUnsupportedError:
            log.info("chain %s: %s answers no %s", chain, rpc.preferred.label, method)
    if required:
        raise TracesUnavailableError(
            f"chain {chain!r}: native_internal is traces, but "
            f"{rpc.preferred.label} answers neither {' nor '.join(METHODS)}; use "
            "an endpoint with traces, or set native_internal: auto or reconcile"
        )
    return None


def _read(
    rpc: RpcTransport,
    method: str,
    numbers: Sequence[int],
    wanted: Collection[str],
    block_hashes: Callable[[Sequence[int]], dict[int, str | None]],
) -> list[NativeTransfer]:
    hashes: dict[int, str | None] = {}
    calls: list[Call]
    if method == TRACE_BLOCK:
        calls = [(method, (hex(n),)) for n in numbers]
    else:
        hashes = block_hashes(numbers)
        calls = [(method, (_known(hashes, n), CALL_TRACER)) for n in numbers]
    out: list[NativeTransfer] = []
    for n, answer in zip(numbers, rpc.batch(calls), strict=True):
        if answer is None:
            raise RpcRejectedError(f"{method}: block #{n:,} not found; the node lags")
        try:
            if method == TRACE_BLOCK:
                out.extend(from_trace_block(n, answer, wanted))
            else:
                out.extend(from_call_tracer(n, _known(hashes, n), answer, wanted))
        except (parse.Malformed, ValueError, TypeError, KeyError, AttributeError):
            raise RpcRejectedError(
                f"{method}: {rpc.preferred.label} sent a malformed answer"
            ) from None
    return out


def _known(hashes: dict[int, str | None], n: int) -> str:
    block_hash = hashes[n]
    if block_hash is None:
        raise RpcRejectedError(f"block #{n:,} not found; the node is lagging")
    return block_hash


# -- debug_traceBlockByHash + callTracer --------------------------------------------

# geth eth/tracers/native/call.go: frame types; a CALL moves `value` to `to`, a
# SELFDESTRUCT moves the balance to `to` (the beneficiary). CALLCODE keeps the value
# in the caller, DELEGATECALL and STATICCALL move none, CREATE pays a new contract.
_PAYING_FRAMES = frozenset({"CALL", "SELFDESTRUCT"})


def from_call_tracer(
    number: int, block_hash: str, answer: Any, wanted: Collection[str]
) -> Iterator[NativeTransfer]:
    """Transfers in one block's callTracer answer: `[{txHash, result: frame}, ...]`."""
    for item in _list(answer):
        tx_hash = parse.hash32(item.get("txHash"), "txHash")
        root = item.get("result")
        if not isinstance(root, dict):
            raise parse.Malformed("a trace without a result frame")
        for position, frame in _walk(root):
            to = str(frame.get("to") or "").lower()
            if str(frame.get("type", "")).upper() not in _PAYING_FRAMES:
                continue
            amount = parse.quantity(frame.get("value") or "0x0", "value")
            if amount and to in wanted:
                yield NativeTransfer(
                    tx_hash,
                    number,
                    block_hash,
                    parse.checksum(parse.address(frame.get("from"), "from")),
                    parse.checksum(parse.address(frame.get("to"), "to")),
                    amount,
                    trace_position=position,
                )


def _walk(root: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(position, frame) of every frame below the root that did not revert and sits in
    no frame that did; positions count every frame, depth first."""
    position = 0
    stack: list[tuple[dict[str, Any], bool]] = [(root, False)]
    while stack:
        frame, inside_revert = stack.pop()
        reverted = inside_revert or bool(frame.get("error"))
        if position and not reverted:
            yield position, frame
        position += 1
        children = frame.get("calls") or []
        if not isinstance(children, list):
            raise parse.Malformed("calls is not a list")
        stack.extend((c, reverted) for c in reversed(children) if isinstance(c, dict))


# -- trace_block --------------------------------------------------------------------


def from_trace_block(
    number: int, answer: Any, wanted: Collection[str]
) -> Iterator[NativeTransfer]:
    """Transfers in one block's `trace_block` answer (frames in depth-first order)."""
    failed: set[tuple[str, tuple[int, ...]]] = set()
    positions: dict[str, int] = {}
    for entry in _list(answer):
        tx = entry.get("transactionHash")
        if tx is None:
            continue  # block and uncle rewards belong to no transaction
        tx_hash = parse.hash32(tx, "transactionHash")
        position = positions.get(tx_hash, 0)
        positions[tx_hash] = position + 1
        path = tuple(int(i) for i in entry.get("traceAddress") or ())
        if entry.get("error") or _under(failed, tx_hash, path):
            failed.add((tx_hash, path))
            continue
        paid = _paid(entry, wanted)
        if position and paid is not None:
            block_hash = parse.hash32(entry.get("blockHash"), "blockHash")
            sender, to, amount = paid
            yield NativeTransfer(
                tx_hash, number, block_hash, sender, to, amount, position
            )


def _under(
    failed: set[tuple[str, tuple[int, ...]]], tx: str, path: Sequence[int]
) -> bool:
    return any((tx, tuple(path[:i])) in failed for i in range(len(path)))


def _paid(
    entry: dict[str, Any], wanted: Collection[str]
) -> tuple[str, str, int] | None:
    """(from, to, amount) when the frame pays a watched address."""
    action = entry.get("action")
    if not isinstance(action, dict):
        raise parse.Malformed("a trace without an action")
    kind = entry.get("type")
    # OpenEthereum trace types: call (callType call/callcode/delegatecall/staticcall),
    # create, suicide (action: address, refundAddress, balance), reward.
    if kind == "call" and action.get("callType") == "call":
        sender, to, value = action.get("from"), action.get("to"), action.get("value")
    elif kind == "suicide":
        sender = action.get("address")
        to, value = action.get("refundAddress"), action.get("balance")
    else:
        return None
    amount = parse.quantity(value or "0x0", "value")
    if not amount or str(to or "").lower() not in wanted:
        return None
    return (
        parse.checksum(parse.address(sender, "from")),
        parse.checksum(parse.address(to, "to")),
        amount,
    )


def _list(answer: Any) -> list[dict[str, Any]]:
    if not isinstance(answer, list) or not all(isinstance(i, dict) for i in answer):
        raise parse.Malformed("a trace answer is not a list of objects")
    return answer
