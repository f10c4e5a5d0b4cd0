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

A frame's position counts only the frames below the root that carry value (a CALL or
SELFDESTRUCT moving more than zero, reverted or not), in depth-first order. The two
APIs do not list the same frames (OpenEthereum-style traces leave out zero-value calls
to precompiles, callTracer lists them: erigontech/erigon#9784), but both list every
frame that moves value, in the same order; so both key a transfer alike, and a rescan
served by the other API finds the same rows. It is stored as
`log_index = -(1000 + position)`: -1 is a top-level native transfer, logs are >= 0, so
(chain, tx hash, log index) stays unique.

A trace answer must cover every transaction of its block (a lagging backend answers
`[]`); a block the endpoint cannot trace (pruned state, a tracer timeout) leaves the
range to `ctrip reconcile` under `native_internal: auto` and fails the pass under
`traces`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from ctrip_cli.chain import parse
from ctrip_cli.chain.client import NativeTransfer
from ctrip_cli.chain.rpc import Call, RpcMethodUnsupportedError, RpcTransport
from ctrip_cli.errors import (
    RpcRejectedError,
    RpcUnavailableError,
    TracesUnavailableError,
)

log = logging.getLogger("ctrip.rpc")
TRACE_BLOCK, DEBUG_TRACE = "trace_block", "debug_traceBlockByHash"
METHODS = (TRACE_BLOCK, DEBUG_TRACE)
POSITION_BASE = 1000
CALL_TRACER = {"tracer": "callTracer"}


def log_index(position: int) -> int:
    """The transfers-table log index of the frame at `position` (>= 1)."""
    return -(POSITION_BASE + position)


class _Lagging(RpcRejectedError):
    """The endpoint answered traces for less than the block holds: rerun the pass."""


def internal_transfers(
    rpc: RpcTransport,
    numbers: Sequence[int],
    wanted: Collection[str],
    *,
    block_hashes: Callable[[Sequence[int]], dict[int, str | None]],
    chain: str,
    required: bool,
    tx_counts: Mapping[int, int] | None = None,
) -> list[NativeTransfer] | None:
    """Internal native transfers to `wanted` (lowercase) in blocks `numbers`;
    `block_hashes` names the blocks for the API that reads them by hash, and
    `tx_counts` (where known) how many transactions each block holds.

    Returns None when `required` is False and the endpoint answers no trace method
    (remembered, so the next pass does not ask again) or cannot trace these blocks.

    Raises:
        TracesUnavailableError: `required` and the endpoint cannot trace the blocks.
        RpcRejectedError: a block is missing or traced only in part (the node lags).
    """
    failed: list[str] = []
    for method in METHODS:
        if method in rpc.preferred.limits.unsupported:
            continue
        try:
            return _read(rpc, method, numbers, wanted, block_hashes, tx_counts or {})
        except RpcMethodUnsupportedError:
            log.info("chain %s: %s answers no %s", chain, rpc.preferred.label, method)
        except _Lagging:
            raise
        except (RpcRejectedError, RpcUnavailableError) as exc:
            failed.append(f"{method}: {exc}")
    where = f"#{numbers[0]:,}-#{numbers[-1]:,}" if numbers else "no block"
    if failed and not required:
        log.warning(
            "chain %s: %s could not trace %s (%s); coin forwarded by contracts there "
            "is left to `ctrip reconcile`",
            chain,
            rpc.preferred.label,
            where,
            "; ".join(failed),
        )
        return None
    if required:
        why = "; ".join(failed) or f"answers neither {' nor '.join(METHODS)}"
        raise TracesUnavailableError(
            f"chain {chain!r}: native_internal is traces, but {rpc.preferred.label} "
            f"cannot trace {where} ({why}); use an endpoint with traces, or set "
            "native_internal: auto or reconcile"
        )
    return None


def _read(
    rpc: RpcTransport,
    method: str,
    numbers: Sequence[int],
    wanted: Collection[str],
    block_hashes: Callable[[Sequence[int]], dict[int, str | None]],
    tx_counts: Mapping[int, int],
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
            raise _Lagging(f"{method}: block #{n:,} not found; the node lags")
        try:
            if method == TRACE_BLOCK:
                found, traced = from_trace_block(n, answer, wanted)
            else:
                found, traced = from_call_tracer(n, _known(hashes, n), answer, wanted)
        except (parse.Malformed, ValueError, TypeError, KeyError, AttributeError):
            raise RpcRejectedError(
                f"{method}: {rpc.preferred.label} sent a malformed answer"
            ) from None
        held = tx_counts.get(n)
        if held is not None and traced < held:
            raise _Lagging(
                f"{method}: {rpc.preferred.label} traced {traced} of the {held} "
                f"transactions of block #{n:,} (a lagging backend?); rerun the scan"
            )
        out.extend(found)
    return out


def _known(hashes: dict[int, str | None], n: int) -> str:
    block_hash = hashes[n]
    if block_hash is None:
        raise _Lagging(f"block #{n:,} not found; the node is lagging")
    return block_hash


# -- debug_traceBlockByHash + callTracer --------------------------------------------

# geth eth/tracers/native/call.go: frame types; a CALL moves `value` to `to`, a
# SELFDESTRUCT moves the balance to `to` (the beneficiary). CALLCODE keeps the value
# in the caller, DELEGATECALL and STATICCALL move none, CREATE pays a new contract.
_PAYING_FRAMES = frozenset({"CALL", "SELFDESTRUCT"})


def from_call_tracer(
    number: int, block_hash: str, answer: Any, wanted: Collection[str]
) -> tuple[list[NativeTransfer], int]:
    """(transfers, transactions traced) of one block's callTracer answer:
    `[{txHash, result: frame}, ...]`."""
    out: list[NativeTransfer] = []
    items = _list(answer)
    for item in items:
        tx_hash = parse.hash32(item.get("txHash"), "txHash")
        root = item.get("result")
        if not isinstance(root, dict):
            raise parse.Malformed("a trace without a result frame")
        position = 0
        for frame, reverted in _walk(root):
            if str(frame.get("type", "")).upper() not in _PAYING_FRAMES:
                continue
            amount = parse.quantity(frame.get("value") or "0x0", "value")
            if not amount:
                continue
            position += 1
            if not reverted and str(frame.get("to") or "").lower() in wanted:
                out.append(
                    NativeTransfer(
                        tx_hash,
                        number,
                        block_hash,
                        parse.checksum(parse.address(frame.get("from"), "from")),
                        parse.checksum(parse.address(frame.get("to"), "to")),
                        amount,
                        trace_position=position,
                    )
                )
    return out, len(items)


def _walk(root: dict[str, Any]) -> Iterator[tuple[dict[str, Any], bool]]:
    """(frame, reverted) of every frame below the root, depth first; `reverted` when
    it or a frame it sits in failed."""
    stack: list[tuple[dict[str, Any], bool, bool]] = [(root, False, True)]
    while stack:
        frame, inside_revert, is_root = stack.pop()
        reverted = inside_revert or bool(frame.get("error"))
        if not is_root:
            yield frame, reverted
        children = frame.get("calls") or []
        if not isinstance(children, list):
            raise parse.Malformed("calls is not a list")
        stack.extend(
            (c, reverted, False) for c in reversed(children) if isinstance(c, dict)
        )


# -- trace_block --------------------------------------------------------------------


def from_trace_block(
    number: int, answer: Any, wanted: Collection[str]
) -> tuple[list[NativeTransfer], int]:
    """(transfers, transactions traced) of one block's `trace_block` answer (frames
    in depth-first order)."""
    out: list[NativeTransfer] = []
    failed: set[tuple[str, tuple[int, ...]]] = set()
    positions: dict[str, int] = {}
    for entry in _list(answer):
        tx = entry.get("transactionHash")
        if tx is None:
            continue  # block and uncle rewards belong to no transaction
        tx_hash = parse.hash32(tx, "transactionHash")
        positions.setdefault(tx_hash, 0)
        path = tuple(int(i) for i in entry.get("traceAddress") or ())
        reverted = bool(entry.get("error")) or _under(failed, tx_hash, path)
        if reverted:
            failed.add((tx_hash, path))
        if not path:
            continue  # the transaction itself
        moved = _moved(entry)
        if moved is None:
            continue
        positions[tx_hash] += 1
        sender, to, amount = moved
        if not reverted and to.lower() in wanted:
            block_hash = parse.hash32(entry.get("blockHash"), "blockHash")
            out.append(
                NativeTransfer(
                    tx_hash,
                    number,
                    block_hash,
                    parse.checksum(sender),
                    parse.checksum(to),
                    amount,
                    positions[tx_hash],
                )
            )
    return out, len(positions)


def _under(
    failed: set[tuple[str, tuple[int, ...]]], tx: str, path: Sequence[int]
) -> bool:
    return any((tx, tuple(path[:i])) in failed for i in range(len(path)))


def _moved(entry: dict[str, Any]) -> tuple[str, str, int] | None:
    """(from, to, amount) when the frame moves value (to anyone)."""
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
    if not amount:
        return None
    return parse.address(sender, "from"), parse.address(to, "to"), amount


def _list(answer: Any) -> list[dict[str, Any]]:
    if not isinstance(answer, list) or not all(isinstance(i, dict) for i in answer):
        raise parse.Malformed("a trace answer is not a list of objects")
    return answer
