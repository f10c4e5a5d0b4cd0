"""Many balances at one block: Multicall3 `aggregate3` where it is deployed, else
batched `eth_getBalance` and `eth_call(balanceOf)`.

Multicall3 (github.com/mds1/multicall3) sits at 0xcA11bde05977b3631167028862bE2a173976CA11
on most EVM chains. One `aggregate3((address,bool,bytes)[])` call reads up to
`CHUNK` balances: native ones through its own `getEthBalance(address)`, token ones
as `balanceOf(address)` of the token, each with `allowFailure` so one token that
reverts costs only its own value. The calldata is encoded and the answer decoded by
hand here (fixed shapes; eth_abi is ~20x slower on 100,000 calls), every offset of
the answer checked against its length.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ctrip_cli.chain import parse, tx
from ctrip_cli.chain.client import BalanceQuery, Balances
from ctrip_cli.chain.rpc import Call, RpcTransport
from ctrip_cli.errors import RpcRejectedError

log = logging.getLogger("ctrip.rpc")
MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"
# 1,000 calls make a request of ~450 kB and cost 6-12 M gas (measured on anvil 1.7.1:
# 6.1 M for 1,000 getEthBalance calls), within the nodes' eth_call gas caps (geth's
# --rpc.gascap is 50 M) and request caps (anvil refuses bodies over 2 MiB, geth
# 5 MiB). A chunk the node refuses is halved.
CHUNK = 1_000
MIN_CHUNK = 16  # below this, read the balances one by one
MULTICALL, DIRECT = "multicall3", "eth_getBalance+eth_call"
_SEL_AGGREGATE3 = "82ad56cb"  # aggregate3((address,bool,bytes)[])
_SEL_ETH_BALANCE = "4d2301cc"  # getEthBalance(address)
_WORD = 64  # hex digits in a 32-byte word


def read(
    rpc: RpcTransport,
    queries: Sequence[BalanceQuery],
    block: int,
    *,
    multicall: str | None,
) -> Balances:
    """Balances of `queries` at `block`, through `multicall` when it has code there.

    Raises:
        RpcRejectedError: the node cannot read the block's state (not an archive
            node and the block too old) or answered garbage.
        RpcUnavailableError: as `RpcTransport.batch`.
    """
    if not queries:
        return Balances([], DIRECT)
    tag = hex(block)
    if multicall is not None and _has_code(rpc, multicall, tag):
        values: list[int | None] = [None] * len(queries)
        left = _by_multicall(rpc, multicall, queries, range(len(queries)), tag, values)
        if left:
            direct = _direct(rpc, [queries[i] for i in left], tag)
            for i, value in zip(left, direct, strict=True):
                values[i] = value
        return Balances(values, MULTICALL)
    return Balances(_direct(rpc, queries, tag), DIRECT)


def _has_code(rpc: RpcTransport, address: str, tag: str) -> bool:
    code = rpc.call("eth_getCode", address, tag)
    return len(_parsed(rpc, "eth_getCode", parse.data, code)) > 2


def _by_multicall(
    rpc: RpcTransport,
    multicall: str,
    queries: Sequence[BalanceQuery],
    todo: Sequence[int],
    tag: str,
    values: list[int | None],
) -> list[int]:
    """Fill `values` for `todo` by aggregate3 calls, halving refused chunks; returns
    the indexes left for direct reads (chunks refused even small)."""
    left: list[int] = []
    size = CHUNK
    while todo:
        chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
        calls: list[Call] = [
            (
                "eth_call",
                ({"to": multicall, "data": encode(multicall, queries, c)}, tag),
            )
            for c in chunks
        ]
        refused: list[int] = []
        for chunk, answer in zip(chunks, rpc.settle(calls), strict=True):
            if isinstance(answer, RpcRejectedError):
                refused.extend(chunk)
                continue
            try:
                decoded = decode(answer, len(chunk))
            except parse.Malformed as exc:
                raise RpcRejectedError(
                    f"eth_call: {rpc.preferred.label} sent a malformed aggregate3 "
                    f"answer ({exc})"
                ) from None
            for i, value in zip(chunk, decoded, strict=True):
                values[i] = value
        if refused and size // 2 >= MIN_CHUNK:
            log.info("aggregate3 of %d calls refused; halving", size)
            size //= 2
        elif refused:
            left.extend(refused)
            refused = []
        todo = refused
    return left


def encode(
    multicall: str, queries: Sequence[BalanceQuery], chunk: Sequence[int]
) -> str:
    """Calldata of aggregate3 over `chunk` of `queries`, every call allowed to fail.

    ABI layout: the array's offset and length, one offset per element (relative to
    the first), then each element (target, allowFailure, offset of its bytes = 0x60,
    length 36, the 36 bytes padded to 64).
    """
    n = len(chunk)
    element = 6 * 32
    head = [_uint(0x20), _uint(n)]
    head.extend(_uint(32 * n + k * element) for k in range(n))
    body = []
    for i in chunk:
        q = queries[i]
        if q.token is None:
            target, inner = multicall, _SEL_ETH_BALANCE + _address_word(q.address)
        else:
            target, inner = q.token, tx.balance_of_data(q.address)[2:]
        body.append(
            _address_word(target)
            + _uint(1)
            + _uint(0x60)
            + _uint(36)
            + inner.ljust(2 * _WORD, "0")
        )
    return "0x" + _SEL_AGGREGATE3 + "".join(head) + "".join(body)


def decode(answer: Any, n: int) -> list[int | None]:
    """The uint256 of each of `n` aggregate3 results; None where a call failed or
    returned fewer than 32 bytes.

    Raises:
        parse.Malformed: the answer is not `n` well-formed results.
    """
    hexed = parse.data(answer, "aggregate3 result")[2:]
    words = len(hexed) // _WORD
    if _word(hexed, 0, words) != 0x20 or _word(hexed, 1, words) != n:
        raise parse.Malformed(f"not an array of {n} results")
    out: list[int | None] = []
    for k in range(n):
        at = 2 + _offset(hexed, 2 + k, words)  # the element's first word
        success = _word(hexed, at, words)
        data_at = at + _offset(hexed, at + 1, words)
        length = _word(hexed, data_at, words)
        if success > 1:
            raise parse.Malformed("a success flag is not a bool")
        if success == 0 or length < 32:
            out.append(None)
            continue
        out.append(_word(hexed, data_at + 1, words))
    return out


def _offset(hexed: str, index: int, words: int) -> int:
    """An ABI offset, in words."""
    value = _word(hexed, index, words)
    if value % 32:
        raise parse.Malformed("an offset is not word-aligned")
    return value // 32


def _word(hexed: str, index: int, words: int) -> int:
    if not 0 <= index < words:
        raise parse.Malformed("an offset points outside the answer")
    return int(hexed[index * _WORD : (index + 1) * _WORD], 16)


def _direct(
    rpc: RpcTransport, queries: Sequence[BalanceQuery], tag: str
) -> list[int | None]:
    """One eth_getBalance or eth_call per balance, batched by the transport."""
    calls: list[Call] = [
        ("eth_getBalance", (q.address, tag))
        if q.token is None
        else ("eth_call", ({"to": q.token, "data": tx.balance_of_data(q.address)}, tag))
        for q in queries
    ]
    out: list[int | None] = []
    for q, answer in zip(queries, rpc.settle(calls), strict=True):
        if isinstance(answer, RpcRejectedError):
            if q.token is None:  # a node that cannot read the state at the block
                raise answer
            out.append(None)  # a token whose balanceOf reverts
        elif q.token is None:
            out.append(_parsed(rpc, "eth_getBalance", parse.quantity, answer))
        else:
            raw = _parsed(rpc, "eth_call", parse.data, answer)
            out.append(int(raw[2:66], 16) if len(raw) >= 66 else None)
    return out


def _parsed(rpc: RpcTransport, method: str, fn: Any, answer: Any) -> Any:
    try:
        return fn(answer)
    except parse.Malformed as exc:
        raise RpcRejectedError(
            f"{method}: {rpc.preferred.label} sent a malformed answer ({exc})"
        ) from None


def _uint(value: int) -> str:
    return f"{value:064x}"


def _address_word(address: str) -> str:
    return address[2:].lower().rjust(_WORD, "0")
