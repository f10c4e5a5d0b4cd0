"""BIP-44 key derivation from the operator's mnemonic. Keys live in memory only.

Deposit address `i` is m/44'/60'/0'/0/i; the gas payer defaults to m/44'/60'/1'/0/0.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from ctrip_cli.config import TEST_MNEMONIC, ChainConfig
from ctrip_cli.errors import ConfigError

DEPOSIT_PATH = "m/44'/60'/0'/0/{index}"


class KeyRing:
    """Derives deposit and gas-payer keys; its repr never shows the mnemonic."""

    __slots__ = ("_keys", "_seed")

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

    @classmethod
    def for_chain(cls, mnemonic: SecretStr | None, chain: ChainConfig) -> KeyRing:
        """The key ring for `chain`, refusing the public test mnemonic off dev chains.

        Raises:
            ConfigError: no mnemonic configured, or the test mnemonic on a real chain.
        """
        if mnemonic is None:
            raise ConfigError(
                "No key material: set CTRIP_MNEMONIC or CTRIP_MNEMONIC_FILE "
                "(payments create and sweep need it)"
            )
        if (
            not chain.is_dev
            and " ".join(mnemonic.get_secret_value().split()) == TEST_MNEMONIC
        ):
            raise ConfigError(
                f"chains.{chain.name}: the public test mnemonic is refused on chain id "
                f"{chain.chain_id}; anyone can spend from its addresses. Set your own "
                "CTRIP_MNEMONIC"
            )
        return cls(mnemonic)

    def __repr__(self) -> str:
        return "KeyRing(**********)"

    def private_key(self, path: str) -> bytes:
        from eth_account.hdaccount import key_from_seed

        cached = self._keys.get(path)
        if cached is not None:
            return cached
        try:
            key = bytes(key_from_seed(self._seed, path))
        except (ValueError, IndexError):
            raise ConfigError(f"derivation path {path!r} is not valid") from None
        self._keys[path] = key
        return key

    def address(self, path: str) -> str:
        return _address_of(self.private_key(path))

    def deposit_address(self, index: int) -> str:
        return self.address(DEPOSIT_PATH.format(index=index))

    def account(self, path: str) -> Any:
        """An eth_account LocalAccount for signing (keep it local; never log it)."""
        from eth_account import Account

        return Account.from_key(self.private_key(path))


def _address_of(key: bytes) -> str:
    from eth_keys.datatypes import PrivateKey

    return str(PrivateKey(key).public_key.to_checksum_address())
