"""Trace parsing: which frames pay a watched address, at which position, under which
revert rules, and that both trace APIs key the same frame alike. The shapes are those
anvil answers (tests/integration/evm/test_forwarded_native.py runs them for real)."""

from __future__ import annotations

from typing import Any

import pytest

from ctrip_cli.chain import parse, traces

TX = "0x" + "ab" * 32
BLOCK = "0x" + "cd" * 32
PAYER, ROUTER, INNER = "0x" + "01" * 20, "0x" + "02" * 20, "0x" + "03" * 20
DEP1, DEP2 = "0x" + "d1" * 20, "0x" + "d2" * 20
WANTED = {DEP1, DEP2}


def frame(to: str, value: int, kind: str = "CALL", **extra: Any) -> dict[str, Any]:
    return {"from": ROUTER, "to": to, "value": hex(value), "type": kind, **extra}


def tree() -> dict[str, Any]:
    """PAYER → ROUTER → [DEP1 (3), INNER (reverts) → [DEP2 (5)], STATICCALL DEP2,
    DELEGATECALL DEP2, DEP2 (0), SELFDESTRUCT → DEP2 (7)]."""
    reverted = frame(INNER, 5, error="execution reverted", calls=[frame(DEP2, 5)])
    calls = [
        frame(DEP1, 3),
        reverted,
        frame(DEP2, 9, "STATICCALL"),
        frame(DEP2, 9, "DELEGATECALL"),
        frame(DEP2, 0),
        frame(DEP2, 7, "SELFDESTRUCT"),
    ]
    return {
        "from": PAYER,
        "to": ROUTER,
        "value": hex(15),
        "type": "CALL",
        "calls": calls,
    }


def flat(root: dict[str, Any]) -> list[dict[str, Any]]:
    """The same tree as `trace_block` lists it: depth first, with traceAddress."""
    out: list[dict[str, Any]] = []

    def visit(f: dict[str, Any], path: list[int]) -> None:
        kind = f["type"]
        if kind == "SELFDESTRUCT":
            entry: dict[str, Any] = {
                "type": "suicide",
                "action": {"address": f["from"], "refundAddress": f["to"],
                           "balance": f["value"]},
            }  # fmt: skip
        else:
            action = {"from": f["from"], "to": f["to"], "value": f["value"]}
            entry = {"type": "call", "action": {**action, "callType": kind.lower()}}
        if f.get("error"):
            entry["error"] = "Reverted"
        entry |= {"traceAddress": path, "transactionHash": TX, "blockHash": BLOCK}
        out.append(entry)
        for i, child in enumerate(f.get("calls", [])):
            visit(child, [*path, i])

    visit(root, [])
    return out


def keyed(found: list[Any]) -> list[tuple[str, int, str, int]]:
    return [(t.tx_hash, t.log_index, t.to_address.lower(), t.amount) for t in found]


def test_call_tracer_counts_paid_calls_outside_reverted_frames():
    found, traced = traces.from_call_tracer(
        7, BLOCK, [{"txHash": TX, "result": tree()}], WANTED
    )
    # Positions count the frames that move value: 1 DEP1, 2 INNER, 3 DEP2 under it
    # (reverted), 4 SELFDESTRUCT; the static, delegate and zero-value calls move none.
    assert keyed(found) == [
        (TX, traces.log_index(1), DEP1, 3),
        (TX, traces.log_index(4), DEP2, 7),
    ]
    assert traced == 1
    assert {(t.block_number, t.block_hash) for t in found} == {(7, BLOCK)}
    assert found[0].to_address == parse.checksum(DEP1)


def test_trace_block_keys_every_frame_as_the_call_tracer_does():
    by_tree, _ = traces.from_call_tracer(
        7, BLOCK, [{"txHash": TX, "result": tree()}], WANTED
    )
    by_list, _ = traces.from_trace_block(7, flat(tree()), WANTED)
    assert keyed(by_list) == keyed(by_tree)


def test_a_zero_value_precompile_call_only_one_api_lists_keys_nothing_apart():
    """OpenEthereum-style traces leave out zero-value calls to precompiles, which
    callTracer lists (erigontech/erigon#9784): a Safe that checks a signature with
    ecrecover and then pays on is keyed alike by both, so a rescan served by the
    other API never records the payment twice."""
    ecrecover = "0x" + "00" * 19 + "01"
    root = tree()
    root["calls"] = [frame(ecrecover, 0), *root["calls"]]
    listed = [e for e in flat(root) if e["action"].get("to") != ecrecover]
    by_tree, _ = traces.from_call_tracer(
        7, BLOCK, [{"txHash": TX, "result": root}], WANTED
    )
    by_list, _ = traces.from_trace_block(7, listed, WANTED)
    assert keyed(by_list) == keyed(by_tree)
    assert [t.log_index for t in by_tree] == [traces.log_index(1), traces.log_index(4)]


def test_the_top_level_call_is_never_counted():
    root = frame(DEP1, 10)  # a plain payment: the top-level read records it
    answer = [{"txHash": TX, "result": root}]
    assert traces.from_call_tracer(1, BLOCK, answer, WANTED) == ([], 1)
    assert traces.from_trace_block(1, flat(root), WANTED) == ([], 1)


def test_a_failed_transaction_pays_nobody():
    root = tree() | {"error": "execution reverted"}
    answer = [{"txHash": TX, "result": root}]
    assert traces.from_call_tracer(1, BLOCK, answer, WANTED) == ([], 1)
    assert traces.from_trace_block(1, flat(root), WANTED) == ([], 1)


def test_rewards_and_other_transactions_keep_their_own_positions():
    other = "0x" + "ee" * 32
    second = [e | {"transactionHash": other} for e in flat(tree())]
    reward = {"type": "reward", "action": {"author": DEP1, "value": "0x1"}}
    found, traced = traces.from_trace_block(1, [reward, *flat(tree()), *second], WANTED)
    assert [(t.tx_hash, t.log_index) for t in found] == [
        (TX, traces.log_index(1)),
        (TX, traces.log_index(4)),
        (other, traces.log_index(1)),
        (other, traces.log_index(4)),
    ]
    assert traced == 2


@pytest.mark.parametrize(
    "answer",
    [{"not": "a list"}, [{"txHash": TX}], [{"txHash": "0x12", "result": tree()}],
     [{"txHash": TX, "result": frame(DEP1, 1, calls="no")}]],
)  # fmt: skip
def test_malformed_call_tracer_answers_are_refused(answer):
    with pytest.raises(parse.Malformed):
        traces.from_call_tracer(1, BLOCK, answer, WANTED)


def test_malformed_trace_block_answers_are_refused():
    with pytest.raises(parse.Malformed):
        traces.from_trace_block(
            1, [{"transactionHash": TX, "type": "call", "traceAddress": [0]}], WANTED
        )


def test_log_indexes_stay_clear_of_logs_and_top_level():
    assert traces.log_index(1) == -1001
    assert all(traces.log_index(p) < -1 for p in range(1, 10_000))
