"""Multicall3 calldata and answers (chain.balances) against the ABI codec, and
answers that lie about their offsets."""

from __future__ import annotations

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from ctrip_cli.chain import balances, parse
from ctrip_cli.chain.client import BalanceQuery

M = balances.MULTICALL3
A, B = "0x" + "11" * 20, "0x" + "22" * 20
TOKEN = "0x" + "33" * 20


def test_calldata_is_what_the_abi_encodes() -> None:
    queries = [BalanceQuery(A), BalanceQuery(A, TOKEN), BalanceQuery(B)]
    data = balances.encode(M, queries, [0, 1, 2])
    assert data.startswith("0x82ad56cb")
    (calls,) = abi_decode(["(address,bool,bytes)[]"], bytes.fromhex(data[10:]))
    assert [(c[0].lower(), c[1], c[2].hex()) for c in calls] == [
        (M.lower(), True, "4d2301cc" + "00" * 12 + "11" * 20),
        (TOKEN, True, "70a08231" + "00" * 12 + "11" * 20),
        (M.lower(), True, "4d2301cc" + "00" * 12 + "22" * 20),
    ]


def _answer(results: list[tuple[bool, bytes]]) -> str:
    return "0x" + abi_encode(["(bool,bytes)[]"], [results]).hex()


def test_answers_decode_with_failures_and_short_returns_as_none() -> None:
    word = (12345).to_bytes(32, "big")
    answer = _answer([(True, word), (False, b"revert"), (True, b"\x01"), (True, word)])
    assert balances.decode(answer, 4) == [12345, None, None, 12345]


@pytest.mark.parametrize(
    ("answer", "n"),
    [
        ("0x", 1),
        (None, 1),
        ("0x" + "00" * 31 + "20" + "00" * 31 + "05", 5),  # says 5 results, holds none
        ("0x" + "00" * 31 + "20" + "00" * 31 + "01" + "ff" * 32, 1),  # out of range
        ("0x" + "00" * 31 + "20" + "00" * 31 + "01" + "00" * 31 + "21", 1),  # unaligned
    ],
)
def test_answers_that_do_not_add_up_are_malformed(answer: object, n: int) -> None:
    with pytest.raises(parse.Malformed):
        balances.decode(answer, n)
