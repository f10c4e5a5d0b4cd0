"""Mnemonics whose keys are public: refused on every chain that is not a dev chain.

Anyone can spend from their addresses, and bots sweep them within seconds.
"""

from __future__ import annotations

from functools import cache

# Default accounts of development tools.
DEV_TOOL_MNEMONICS = (
    # Hardhat, anvil (Foundry): `test` x 11 + `junk`.
    "test test test test test test test test test test test junk",
    # ganache --deterministic (formerly testrpc -d).
    "myth like bonus scare over problem client lizard pioneer submit female collect",
    # truffle develop / the ganache-cli examples.
    "candy maple cake sugar pudding cream honey rich smooth crumble sweet treat",
)
# Entropy of the 24 English BIP-39 test vectors (trezor/python-mnemonic vectors.json);
# the mnemonics are derived from it, e.g. 00 x 16 -> `abandon` x 11 + `about`.
BIP39_VECTOR_ENTROPY = (
    *(f"{b:02x}" * n for n in (16, 24, 32) for b in (0x00, 0x7F, 0x80, 0xFF)),
    "9e885d952ad362caeb4efe34a8e91bd2",
    "6610b25967cdcca9d59875f5cb50b0ea75433311869e930b",
    "68a79eaca2324873eacc50cb9c6eca8cc68ea5d936f98787c60c7ebc74e6ce7c",
    "c0ba5a8e914111210f2bd131f3d5e08d",
    "6d9be1ee6ebd27a258115aad99b7317b9c8d28b6d76431c3",
    "9f6a2878b2520799a44ef18bc7df394e7061a224d2c33cd015b157d746869863",
    "23db8160a31d3e0dca3688ed941adbf3",
    "8197a4a47f0425faeaa69deebc05ca29c0a5b5cc76ceacc0",
    "066dca1a2bb7e8a1db2832148ce9933eea0f3ac9548d793112d9a95c9407efad",
    "f30f8c1da665478f49b001d94c5fc452",
    "c10ec20dc3cd9f652c7fac2f1230f7a3c828389a14392f05",
    "f585c11aec520db57dd353c69554b21a89b20fb0650966fa0a9d6f74fd989d8f",
)


@cache
def public_mnemonics() -> frozenset[str]:
    """Every known public mnemonic, words separated by single spaces."""
    from eth_account.hdaccount.mnemonic import (  # type: ignore[attr-defined]
        Language,
        Mnemonic,
    )

    english = Mnemonic(Language.ENGLISH)
    vectors = (english.to_mnemonic(bytes.fromhex(e)) for e in BIP39_VECTOR_ENTROPY)
    return frozenset((*DEV_TOOL_MNEMONICS, *vectors))


def is_public(words: str) -> bool:
    """Whether `words` (any spacing or case) is a publicly known mnemonic."""
    return " ".join(words.lower().split()) in public_mnemonics()
