"""The OP Stack L1 data fee, pure: FastLZ lengths against op-revm's published test
vectors, the Ecotone and Fjord formulas, the L1Block slot layout, the length bound
every reserve is built on, and EvmChain's reads (storage, `isFjord()`, minimum fees)
against a scripted endpoint."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from ctrip_cli.chain import opstack, tx
from ctrip_cli.chain.client import Fees
from ctrip_cli.chain.evm import EvmChain
from ctrip_cli.config import ChainConfig, NativeConfig, to_checksum
from ctrip_cli.errors import RpcRejectedError

# op-revm crates/op-revm/src/fast_lz.rs `test_flz_compress_len` (a contract call of
# 345 bytes compresses to 202).
CONTRACT_CALL = bytes.fromhex(
    "02f901550a758302df1483be21b88304743f94f80e51afb613d764fa61751affd3313c190a86bb"
    "870151bd62fd12adb8e41ef24f3f00000000000000000000000000000000000000000000000000"
    "0000000000006e000000000000000000000000af88d065e77c8cc2239327c5edb3a432268e5831"
    "000000000000000000000000000000000000000000000000000000000003c1e500000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000a000000000000000000000000000000000000000"
    "000000000000000000000000148c89ed219d02f1a5be012c689b4f5b731827bebe0000000000000"
    "00000000000c001a033fd89cb37c31b2cba46b6466e040c61fc9b2a3675a7f5f493ebd5ad77c497"
    "f8a07cdf65680e238392693019b4092f610222e71b7cec06449cb922b93b6a12744e"
)
PARAMS = opstack.L1FeeParams(50 * 10**9, 10 * 10**9, 1_368, 810_949)


@pytest.mark.parametrize(
    ("data", "length"),
    [
        (b"", 0),
        (bytes(1000), 21),
        (bytes([42]) * 1000, 21),
        (bytes.fromhex("FACADE"), 4),
        (CONTRACT_CALL, 202),
    ],
)
def test_fastlz_length_matches_op_revm_vectors(data: bytes, length: int) -> None:
    assert opstack.flz_compress_len(data) == length


@given(st.binary(max_size=2_000))
@settings(max_examples=300)
def test_fastlz_never_outgrows_the_bound(data: bytes) -> None:
    n = len(data)
    assert opstack.flz_compress_len(data) <= n + -(-n // 32)


def test_fjord_fee_of_a_small_transaction_is_the_minimum_size_fee() -> None:
    # 100 × (16·1368·50 gwei + 810949·10 gwei) / 1e12, as anvil charged it.
    assert opstack.fjord_fee(PARAMS, 98) == 920_389_000_000
    assert opstack.fjord_fee(PARAMS, 300) == (
        (300 * 836_500 - 42_585_600) * PARAMS.scaled // 10**12
    )


def test_ecotone_fee_counts_calldata_gas() -> None:
    raw = bytes([2, 0, 0, 7])  # 2 non-zero, 2 zero bytes: 16·2 + 4·2 = 40 gas
    ecotone = opstack.L1FeeParams(50 * 10**9, 10 * 10**9, 1_368, 810_949, fjord=False)
    assert opstack.l1_fee(ecotone, raw) == 40 * PARAMS.scaled // 16_000_000


def test_deposits_and_empty_chains_pay_no_l1_fee() -> None:
    assert opstack.l1_fee(PARAMS, bytes([0x7E, 1, 2])) == 0
    assert opstack.l1_fee(opstack.L1FeeParams(), CONTRACT_CALL) == 0


def test_slots_are_read_at_their_documented_offsets() -> None:
    scalars = 1_368 << 96 | 810_949 << 64 | 7  # sequence number in the low bytes
    operator = 5 << 64 | 99  # scalar at bytes 20-24, constant at 24-32
    params = opstack.L1FeeParams.from_slots(
        {1: 50 * 10**9, 3: scalars, 7: 10 * 10**9, 8: operator}, fjord=True
    )
    assert params == opstack.L1FeeParams(
        50 * 10**9, 10 * 10**9, 1_368, 810_949, 5, 99, True
    )
    assert opstack.operator_fee_bound(params, 21_000) == 21_000 * 5 * 100 + 99
    assert opstack.operator_fee_bound(PARAMS, 21_000) == 0


ACCOUNT = Account.from_key("0x" + "42" * 32)
address = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum("0x" + b.hex()))


@given(
    value=st.integers(0, 10**30),
    fraction=st.integers(0, 100),
    nonce=st.integers(0, 2**40),
    gas=st.integers(21_000, 10**7),
    price=st.integers(1, 10**13),
    tip=st.integers(0, 10**11) | st.none(),
    to=address,
    data=st.binary(max_size=100).map(lambda b: "0x" + b.hex()),
)
@settings(max_examples=60, deadline=None)
def test_signed_length_bound_holds_for_any_signature_and_smaller_value(
    value: int,
    fraction: int,
    nonce: int,
    gas: int,
    price: int,
    tip: int | None,
    to: str,
    data: str,
) -> None:
    fees = Fees(price + (tip or 0), tip)
    bound = tx.signed_len_bound(
        chain_id=8453, to=to, value=value, data=data, gas_limit=gas, fees=fees
    )
    signed = tx.sign(
        ACCOUNT,
        chain_id=8453,
        nonce=nonce,
        to=to,
        value=value * fraction // 100,
        data=data,
        gas_limit=gas,
        fees=fees,
    )
    raw = bytes.fromhex(signed.raw[2:])
    assert len(raw) <= bound
    assert opstack.l1_fee(PARAMS, raw) <= opstack.l1_fee_bound(PARAMS, bound)


# -- EvmChain's reads --


def _evm(answers: dict[str, Any], **cfg: Any) -> tuple[EvmChain, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def respond(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls = body if isinstance(body, list) else [body]
        seen.extend(calls)
        out = []
        for call in calls:
            key = call["method"]
            if key == "eth_getStorageAt":
                key = f"slot{int(call['params'][1], 16)}"
            answer = answers[key]
            if isinstance(answer, Refusal):
                out.append({"jsonrpc": "2.0", "id": call["id"], "error": answer.error})
            else:
                out.append({"jsonrpc": "2.0", "id": call["id"], "result": answer})
        return httpx.Response(200, json=out if isinstance(body, list) else out[0])

    config = ChainConfig(
        name="local",
        chain_id=31337,
        rpc_urls=[SecretStr("http://127.0.0.1:1")],
        native=NativeConfig(symbol="ETH"),
        **cfg,
    )
    return EvmChain.open(config, transport=httpx.MockTransport(respond)), seen


class Refusal:
    def __init__(self, code: int, message: str) -> None:
        self.error = {"code": code, "message": message}


def _word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


SLOTS = {
    "slot1": _word(50 * 10**9),
    "slot3": _word(1_368 << 96 | 810_949 << 64),
    "slot7": _word(10 * 10**9),
    "slot8": _word(0),
}


@pytest.mark.parametrize(
    ("oracle", "fjord"),
    [
        ("0x", True),  # no GasPriceOracle code (anvil): Fjord
        (_word(1), True),
        (_word(0), False),
        (Refusal(3, "execution reverted"), False),  # before Fjord
    ],
)
def test_l1_fee_params_come_from_storage_and_the_oracle_picks_the_formula(
    oracle: Any, fjord: bool
) -> None:
    chain, seen = _evm({**SLOTS, "eth_call": oracle})

    first = chain.l1_fee_params()
    again = chain.l1_fee_params(12)

    assert first == opstack.L1FeeParams(
        50 * 10**9, 10 * 10**9, 1_368, 810_949, fjord=fjord
    )
    assert again == first
    assert [c["method"] for c in seen].count("eth_call") == 1  # asked once
    assert seen[-1]["params"][2] == "0xc"


@pytest.mark.parametrize(
    "refusal",
    [
        Refusal(-32601, "the method eth_call does not exist"),
        Refusal(-32000, "header not found"),
        Refusal(-32603, "internal error"),
    ],
)
def test_an_oracle_call_refused_other_than_by_a_revert_fails_the_read(
    refusal: Refusal,
) -> None:
    chain, seen = _evm({**SLOTS, "eth_call": refusal})

    with pytest.raises(RpcRejectedError, match="eth_call"):
        chain.l1_fee_params()
    with pytest.raises(RpcRejectedError, match="eth_call"):  # not taken as an answer
        chain.l1_fee_params()
    assert [c["method"] for c in seen].count("eth_call") == 2


def test_minimum_fees_floor_what_the_node_suggests() -> None:
    node = {
        "eth_getBlockByNumber": {"number": "0x1", "baseFeePerGas": hex(10**9)},
        "eth_maxPriorityFeePerGas": hex(10**9),
        "eth_gasPrice": hex(2 * 10**9),
    }
    tip_floor, _ = _evm(node, min_priority_fee_wei=25 * 10**9)
    price_floor, _ = _evm(node, eip1559=False, min_gas_price_wei=5 * 10**9)
    plain, _ = _evm(node)

    assert tip_floor.fees(eip1559=True) == Fees(27 * 10**9, 25 * 10**9)
    assert price_floor.gas_price() == Fees(5 * 10**9)
    # a minimum gas price on an EIP-1559 chain is met through the tip
    assert _evm(node, min_gas_price_wei=8 * 10**9)[0].fees(eip1559=True) == Fees(
        9 * 10**9, 7 * 10**9
    )
    assert plain.fees(eip1559=True) == Fees(3 * 10**9, 10**9)
    assert plain.gas_price() == Fees(2 * 10**9)
