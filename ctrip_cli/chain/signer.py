"""BIP-44 key derivation from the operator's mnemonic. Keys live in memory only.

Deposit address `i` is m/44'/60'/0'/0/i; the gas payer defaults to m/44'/60'/1'/0/0.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from pydantic import SecretStr

from ctrip_cli import keypaths
from ctrip_cli.chain import public_mnemonics
from ctrip_cli.config import ChainConfig
from ctrip_cli.errors import ConfigError

DEPOSIT_PATH = "m/44'/60'/0'/0/{index}"


class KeyRing:
    """Derives deposit and gas-payer keys; its repr never shows the mnemonic."""

    __slots__ = (
        "_accounts",
        "_addresses",
        "_key_objs",
        "_keys",
        "_nodes",
        "_pubs",
        "_seed",
    )

    def __init__(self, mnemonic: SecretStr) -> None:
        from eth_account.hdaccount import seed_from_mnemonic
        from eth_account.hdaccount.mnemonic import (  # type: ignore[attr-defined]
            Language,
            Mnemonic,
        )

        words = mnemonic.get_secret_value()
        if not Mnemonic(Language.ENGLISH).is_mnemonic_valid(words):
            raise ConfigError(
                "CTRIP_MNEMONIC: not a valid BIP-39 English mnemonic (word or checksum)"
            )
        self._seed = seed_from_mnemonic(words, "")
        # Derivation costs ~10 ms a key; a sweep pass asks for the same paths repeatedly.
        self._keys: dict[str, bytes] = {}
        self._nodes: dict[tuple[int, ...], tuple[bytes, bytes]] = {}
        self._pubs: dict[tuple[int, ...], bytes] = {}
        self._addresses: dict[str, str] = {}
        self._accounts: dict[str, Any] = {}
        self._key_objs: dict[str, Any] = {}

    @classmethod
    def for_chain(cls, mnemonic: SecretStr | None, chain: ChainConfig) -> KeyRing:
        """The key ring for `chain`, refusing public test mnemonics off dev chains.

        Raises:
            ConfigError: no mnemonic configured, or a public mnemonic on a real chain.
        """
        if mnemonic is None:
            raise ConfigError(
                "No key material: set CTRIP_MNEMONIC or CTRIP_MNEMONIC_FILE "
                "(payments create and sweep need it)"
            )
        if not chain.is_dev and public_mnemonics.is_public(mnemonic.get_secret_value()):
            raise ConfigError(
                f"chains.{chain.name}: a public test mnemonic is refused on chain id "
                f"{chain.chain_id}; anyone can spend from its addresses. Set your own "
                "CTRIP_MNEMONIC"
            )
        return cls(mnemonic)

    def __repr__(self) -> str:
        return "KeyRing(**********)"

    def private_key(self, path: str) -> bytes:
        """The private key at a BIP-32 path such as m/44'/60'/0'/0/7.

        Raises:
            ConfigError: the path is not a valid derivation path.
        """
        cached = self._keys.get(path)
        if cached is None:
            cached = self._keys[path] = self._derive(path)
        return cached

    def _derive(self, path: str) -> bytes:
        # BIP-32 with every intermediate node cached: deposit i needs only one HMAC
        # from the cached m/44'/60'/0'/0 node instead of a full walk with point
        # multiplications (~10 ms each in the pure-Python backend).
        nodes = _parse_path(path)
        depth = len(nodes)
        while depth and nodes[:depth] not in self._nodes:
            depth -= 1
        key, chain_code = self._nodes[nodes[:depth]] if depth else _master(self._seed)
        for i in range(depth, len(nodes)):
            child = _child(key, chain_code, nodes[i], self._public(nodes[:i], key))
            if (
                child is None
            ):  # probability < 2**-127: let eth_account apply BIP-32's rule
                from eth_account.hdaccount import key_from_seed

                return bytes(key_from_seed(self._seed, path))
            key, chain_code = child
            self._nodes[nodes[: i + 1]] = child
        return key

    def _public(self, node: tuple[int, ...], key: bytes) -> bytes:
        pub = self._pubs.get(node)
        if pub is None:
            from eth_keys.datatypes import PrivateKey

            pub = self._pubs[node] = PrivateKey(key).public_key.to_compressed_bytes()
        return pub

    def address(self, path: str) -> str:
        cached = self._addresses.get(path)
        if cached is None:
            cached = self._addresses[path] = str(
                self._key_obj(path).public_key.to_checksum_address()
            )
        return cached

    def _key_obj(self, path: str) -> Any:
        # eth_keys computes the public key once, here; the address and the account
        # (and each signature, see chain/tx.py) reuse it.
        obj = self._key_objs.get(path)
        if obj is None:
            from eth_keys.datatypes import PrivateKey

            obj = self._key_objs[path] = PrivateKey(self.private_key(path))
        return obj

    def deposit_address(self, index: int) -> str:
        return self.address(DEPOSIT_PATH.format(index=index))

    def account(self, path: str) -> Any:
        """An eth_account LocalAccount for signing (keep it local; never log it)."""
        from eth_account import Account

        account = self._accounts.get(path)
        if account is None:
            account = self._accounts[path] = Account.from_key(self._key_obj(path))
        return account


_HARDENED = keypaths.HARDENED
_CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _parse_path(path: str) -> tuple[int, ...]:
    try:
        return keypaths.parse_path(path)
    except ValueError as exc:
        raise ConfigError(f"derivation path {path!r} is not valid ({exc})") from None


def _master(seed: bytes) -> tuple[bytes, bytes]:
    digest = hmac.new(b"Bitcoin seed", seed, hashlib.sha512).digest()
    return digest[:32], digest[32:]


def _child(
    key: bytes, chain_code: bytes, index: int, pub: bytes
) -> tuple[bytes, bytes] | None:
    data = (b"\0" + key if index >= _HARDENED else pub) + index.to_bytes(4, "big")
    digest = hmac.new(chain_code, data, hashlib.sha512).digest()
    tweak = int.from_bytes(digest[:32], "big")
    child = (tweak + int.from_bytes(key, "big")) % _CURVE_ORDER
    if tweak >= _CURVE_ORDER or child == 0:
        return None
    return child.to_bytes(32, "big"), digest[32:]
