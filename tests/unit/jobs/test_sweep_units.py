"""Fast checks of the sweep's pure parts: fee bumps, ERC-20 calldata and Transfer logs,
the treasury requirement, and cached BIP-32 derivation matching eth_account's."""

from __future__ import annotations

import pytest
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from ctrip_cli.chain import tx
from ctrip_cli.chain.client import Fees, Log, Receipt
from ctrip_cli.chain.signer import KeyRing
from ctrip_cli.config import load_chains
from ctrip_cli.errors import ConfigError
from ctrip_cli.jobs.sweep import require_treasury
from tests.conftest import TEST_MNEMONIC_OWN

A = "0x" + "ab" * 20
B = "0x" + "cd" * 20
TOKEN = "0x" + "ef" * 20
fee = st.integers(min_value=1, max_value=10**15)


@given(max_fee=fee, tip=fee, floor_max=fee, floor_tip=fee)
def test_bump_raises_both_fees_by_at_least_the_node_minimum(
    max_fee: int, tip: int, floor_max: int, floor_tip: int
) -> None:
    old = Fees(max(max_fee, tip), tip)
    new = old.bumped(1_250, Fees(max(floor_max, floor_tip), floor_tip))
    assert new.max_fee_per_gas * 100 >= old.max_fee_per_gas * 110
    assert new.max_priority_fee_per_gas is not None
    assert new.max_priority_fee_per_gas * 100 >= tip * 110
    assert new.max_fee_per_gas >= new.max_priority_fee_per_gas


def test_legacy_bump_follows_a_higher_market_price() -> None:
    assert Fees(100).bumped(1_250, Fees(90)) == Fees(113)
    assert Fees(100).bumped(1_250, Fees(500)) == Fees(500)
    assert Fees(100).cost_wei(21_000) == 2_100_000


def test_transfer_calldata_is_abi_encoded() -> None:
    data = tx.transfer_data(A, 12_500_000)
    assert data[:10] == "0xa9059cbb"
    assert data[10:74] == "0" * 24 + "ab" * 20
    assert int(data[74:], 16) == 12_500_000


def _receipt(status: int, *logs: Log) -> Receipt:
    return Receipt("0x01", status, 10, 50_000, 1, tuple(logs))


def _transfer_log(frm: str, to: str, amount: int, token: str = TOKEN) -> Log:
    def word(a: str) -> str:
        return "0x" + a[2:].rjust(64, "0")

    return Log(token, (tx.TRANSFER_TOPIC, word(frm), word(to)), hex(amount))


def test_transfer_log_is_the_proof_for_no_return_tokens() -> None:
    rc = _receipt(1, _transfer_log(A, B, 7))
    assert tx.has_transfer_log(rc, token=TOKEN, sender=A, to=B, amount=7)
    assert not tx.has_transfer_log(rc, token=TOKEN, sender=A, to=B, amount=8)
    assert not tx.has_transfer_log(rc, token=A, sender=A, to=B, amount=7)
    assert not tx.has_transfer_log(_receipt(1), token=TOKEN, sender=A, to=B, amount=7)


def test_unset_treasury_names_its_config_key() -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chains.yaml"
        path.write_text(
            "chains:\n  polygon:\n    chain_id: 137\n    rpc_urls: ['http://127.0.0.1:9']\n"
            "    native: {symbol: POL}\n"
        )
        cfg = load_chains(path, {})["polygon"]
    with pytest.raises(ConfigError, match=r"chains\.polygon\.treasury"):
        require_treasury(cfg)


@settings(max_examples=25, deadline=None)
@given(path=st.lists(st.tuples(st.integers(0, 2**31 - 1), st.booleans()), max_size=5))
def test_cached_derivation_matches_eth_account(path: list[tuple[int, bool]]) -> None:
    text = "/".join(["m", *(f"{i}'" if hard else str(i) for i, hard in path)])
    seed = seed_from_mnemonic(TEST_MNEMONIC_OWN, "")
    keys = KeyRing(SecretStr(TEST_MNEMONIC_OWN))
    assert keys.private_key(text) == bytes(key_from_seed(seed, text))
    assert keys.private_key(text) == bytes(key_from_seed(seed, text))  # from the cache


def test_deposit_addresses_are_bip44() -> None:
    keys = KeyRing(SecretStr("abandon " * 11 + "about"))
    # The standard first account of the "abandon ... about" mnemonic.
    assert keys.deposit_address(0) == "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
    with pytest.raises(ConfigError, match="not valid"):
        keys.private_key("m/44'/x'")
