"""BIP-32/BIP-44 key derivation from the operator's mnemonic. Keys live in memory only.

Deposit address `i` is m/44'/60'/0'/0/i; the gas payer defaults to m/44'/60'/1'/0/0.
Points are multiplied by libsecp256k1 (coincurve), and a process keeps one key ring per
mnemonic, so a new deposit address is one child step from the cached m/44'/60'/0'/0.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import coincurve
from Crypto.Hash import keccak
from pydantic import SecretStr

from ctrip_cli import keypaths
from ctrip_cli.chain import public_mnemonics
from ctrip_cli.config import ChainConfig, to_checksum
from ctrip_cli.errors import ConfigError

DEPOSIT_PATH = "m/44'/60'/0'/0/{index}"
LEAF_CACHE_SIZE = 4096  # derived keys and addresses a ring remembers (then it forgets)
_RING_CACHE_SIZE = 8
_RINGS: dict[bytes, KeyRing] = {}


class KeyRing:
    """Derives deposit and gas-payer keys; its repr never shows the mnemonic."""

    __slots__ = ("_accounts", "_leaves", "_nodes", "_pubs", "_seed")

    def __init__(self, mnemonic: SecretStr) -> None:
        words = mnemonic.get_secret_value()
        if not _is_valid_mnemonic(words):
            raise ConfigError(
                "CTRIP_MNEMONIC: not a valid BIP-39 English mnemonic (word or checksum)"
            )
        self._seed = _seed(words)
        # Inner nodes (a handful of account paths) are kept; leaves are bounded.
        self._nodes: dict[tuple[int, ...], tuple[bytes, bytes]] = {}
        self._pubs: dict[tuple[int, ...], bytes] = {}
        self._leaves: dict[str, tuple[bytes, str]] = {}
        self._accounts: dict[str, Any] = {}

    @classmethod
    def for_chain(cls, mnemonic: SecretStr | None, chain: ChainConfig) -> KeyRing:
        """The key ring for `chain`, refusing public test mnemonics off dev chains.

        The ring is shared by every caller in this process with the same mnemonic.

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
        return cls.shared(mnemonic)

    @classmethod
    def shared(cls, mnemonic: SecretStr) -> KeyRing:
        """This process's ring for `mnemonic`, built on first use.

        Raises:
            ConfigError: not a valid mnemonic.
        """
        digest = hashlib.sha256(mnemonic.get_secret_value().encode()).digest()
        ring = _RINGS.get(digest)
        if ring is None:
            if len(_RINGS) >= _RING_CACHE_SIZE:
                _RINGS.clear()
            ring = _RINGS[digest] = cls(mnemonic)
        return ring

    def __repr__(self) -> str:
        return "KeyRing(**********)"

    def private_key(self, path: str) -> bytes:
        """The private key at a BIP-32 path such as m/44'/60'/0'/0/7.

        Raises:
            ConfigError: the path is not a valid derivation path.
        """
        return self._leaf(path)[0]

    def address(self, path: str) -> str:
        """The checksummed address of the key at `path`.

        Raises:
            ConfigError: the path is not a valid derivation path.
        """
        return self._leaf(path)[1]

    def deposit_address(self, index: int) -> str:
        return self.address(DEPOSIT_PATH.format(index=index))

    def account(self, path: str) -> Any:
        """An eth_account LocalAccount for signing (keep it local; never log it)."""
        account = self._accounts.get(path)
        if account is None:
            from eth_account import Account

            if len(self._accounts) >= LEAF_CACHE_SIZE:
                self._accounts.clear()
            account = self._accounts[path] = Account.from_key(self.private_key(path))
        return account

    def _leaf(self, path: str) -> tuple[bytes, str]:
        leaf = self._leaves.get(path)
        if leaf is None:
            key = self._derive(path)
            if len(self._leaves) >= LEAF_CACHE_SIZE:
                self._leaves.clear()
            leaf = self._leaves[path] = (key, _address(key))
        return leaf

    def _derive(self, path: str) -> bytes:
        # BIP-32 with the inner nodes cached: deposit i needs one HMAC and one point
        # multiplication from the cached m/44'/60'/0'/0 node instead of a full walk.
        nodes = _parse_path(path)
        depth = len(nodes)
        while depth and nodes[:depth] not in self._nodes:
            depth -= 1
        key, chain_code = self._nodes[nodes[:depth]] if depth else _master(self._seed)
        for i in range(depth, len(nodes)):
            child = _child(key, chain_code, nodes[i], self._public(nodes[:i], key))
            if (
                child is None
            ):  # probability < 2**-127: eth_account applies BIP-32's rule
                from eth_account.hdaccount import key_from_seed

                return bytes(key_from_seed(self._seed, path))
            key, chain_code = child
            if i < len(nodes) - 1:
                self._nodes[nodes[: i + 1]] = child
        return key

    def _public(self, node: tuple[int, ...], key: bytes) -> bytes:
        # Only inner nodes are parents, so this cache stays as small as `_nodes`.
        pub = self._pubs.get(node)
        if pub is None:
            pub = self._pubs[node] = coincurve.PublicKey.from_secret(key).format()
        return pub


_HARDENED = keypaths.HARDENED
_CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_WORD_COUNTS = (12, 15, 18, 21, 24)


@cache
def _wordlist() -> dict[str, int]:
    # BIP-39's English list as eth-account ships it, read without importing
    # eth_account (whose import costs more than a whole `payments create`).
    spec = importlib.util.find_spec("eth_account")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("eth-account is not installed; reinstall ctrip")
    path = Path(spec.submodule_search_locations[0], "hdaccount/wordlist/english.txt")
    words = path.read_text(encoding="utf-8").split()
    return {word: i for i, word in enumerate(words)}


def _is_valid_mnemonic(words: str) -> bool:
    """BIP-39: known words whose last n/3 bits are the start of SHA-256(entropy)."""
    # The same rule (NFKD, single spaces) as eth-account's Mnemonic.is_mnemonic_valid.
    parts = unicodedata.normalize("NFKD", words).split(" ")
    index = _wordlist()
    if len(parts) not in _WORD_COUNTS or any(w not in index for w in parts):
        return False
    value = 0
    for word in parts:
        value = value << 11 | index[word]
    checksum_bits = len(parts) // 3
    entropy = (value >> checksum_bits).to_bytes(len(parts) * 4 // 3, "big")
    expected = hashlib.sha256(entropy).digest()[0] >> (8 - checksum_bits)
    return hmac.compare_digest(
        bytes([expected]), bytes([value & ((1 << checksum_bits) - 1)])
    )


def _seed(words: str) -> bytes:
    # BIP-39 seed: PBKDF2-HMAC-SHA512, 2048 rounds, salt "mnemonic" (no passphrase).
    normal = unicodedata.normalize("NFKD", words).encode()
    return hashlib.pbkdf2_hmac("sha512", normal, b"mnemonic", 2048)


def _address(key: bytes) -> str:
    point = coincurve.PublicKey.from_secret(key).format(compressed=False)
    digest = keccak.new(digest_bits=256, data=point[1:]).hexdigest()
    return to_checksum(digest[-40:])


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
