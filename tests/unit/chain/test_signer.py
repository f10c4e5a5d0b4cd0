"""Key derivation against eth-account: addresses, mnemonic validation, no leaks."""

from __future__ import annotations

import hashlib
import traceback

import pytest
from eth_account import Account
from eth_account.hdaccount import Language, Mnemonic, key_from_seed, seed_from_mnemonic
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from ctrip_cli.chain.signer import DEPOSIT_PATH, KeyRing
from ctrip_cli.config import DEFAULT_GAS_PAYER_PATH
from ctrip_cli.errors import ConfigError

Account.enable_unaudited_hdwallet_features()
ENGLISH = Mnemonic(Language.ENGLISH)
MNEMONICS = [
    ENGLISH.to_mnemonic(hashlib.sha256(f"ctrip-{n}".encode()).digest()[:size])
    for n, size in enumerate((16, 20, 24, 28, 32))
]
INDEXES = [*range(40), 99, 1_000, 65_535, 1_000_003, 2**31 - 1]


@pytest.mark.parametrize("words", MNEMONICS, ids=lambda w: f"{len(w.split())}words")
def test_deposit_and_gas_payer_addresses_match_eth_account(words):
    keys = KeyRing(SecretStr(words))
    for path in [DEPOSIT_PATH.format(index=i) for i in INDEXES] + [
        DEFAULT_GAS_PAYER_PATH,
        "m/44'/60'/1'/0/7",
    ]:
        expected = Account.from_mnemonic(words, account_path=path)
        assert keys.address(path) == expected.address, path
        assert keys.private_key(path) == bytes(expected.key), path
        assert keys.account(path).address == expected.address


def test_the_shared_ring_derives_the_same_addresses_as_a_fresh_one():
    words = MNEMONICS[0]
    shared = KeyRing.shared(SecretStr(words))
    assert KeyRing.shared(SecretStr(words)) is shared
    assert KeyRing.shared(SecretStr(MNEMONICS[1])) is not shared
    fresh = KeyRing(SecretStr(words))
    assert [shared.deposit_address(i) for i in range(300)] == [
        fresh.deposit_address(i) for i in range(300)
    ]


@settings(max_examples=25, deadline=None)
@given(path=st.lists(st.tuples(st.integers(0, 2**31 - 1), st.booleans()), max_size=6))
def test_any_path_matches_eth_account(path):
    text = "/".join(["m", *(f"{i}'" if hard else str(i) for i, hard in path)])
    keys = KeyRing(SecretStr(MNEMONICS[4]))
    assert keys.private_key(text) == bytes(
        key_from_seed(seed_from_mnemonic(MNEMONICS[4], ""), text)
    )


@settings(max_examples=200, deadline=None)
@given(
    entropy=st.sampled_from((16, 20, 24, 28, 32)).flatmap(
        lambda n: st.binary(min_size=n, max_size=n)
    ),
    swap=st.integers(0, 2047),
    position=st.integers(0, 23),
)
def test_mnemonic_validation_agrees_with_eth_account(entropy, swap, position):
    original = ENGLISH.to_mnemonic(entropy)
    assert _accepted(original)
    words = original.split(" ")
    words[position % len(words)] = ENGLISH.wordlist[swap]
    text = " ".join(words)
    assert ENGLISH.is_mnemonic_valid(text) == _accepted(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abandon",
        " ".join(["abandon"] * 11 + ["about"]).upper(),
        " ".join(["abandon"] * 11 + ["abou"]),
        " ".join(["abandon"] * 12),
        " ".join(["abandon"] * 11 + ["about", "about"]),
        "abandon  " * 11 + "about",
    ],
)
def test_bad_mnemonics_are_refused_like_eth_account(text):
    assert not ENGLISH.is_mnemonic_valid(text)
    assert not _accepted(text)


def test_no_key_material_in_reprs_or_errors():
    words = MNEMONICS[2]
    keys = KeyRing(SecretStr(words))
    key = keys.private_key(DEPOSIT_PATH.format(index=3))
    secrets = [words, key.hex(), bytes(keys._seed).hex()[:16]]
    texts = [repr(keys), str(keys)]
    for bad in ("m/44'/60'/x", "44'/60'", "m/2147483648"):
        with pytest.raises(ConfigError) as caught:
            keys.address(bad)
        texts.append("".join(traceback.format_exception(caught.value)))
    with pytest.raises(ConfigError) as caught:
        KeyRing(SecretStr(words.rsplit(" ", 1)[0] + " zoo"))
    texts.append("".join(traceback.format_exception(caught.value)))
    for text in texts:
        for secret in secrets:
            assert secret not in text


def _accepted(text: str) -> bool:
    try:
        KeyRing(SecretStr(text))
    except ConfigError:
        return False
    return True
