"""Pytest plugin: one anvil node per session (per xdist worker), per-test
snapshot/revert and the standard test tokens. Load with -p tests.evm_fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.evm import Anvil, deploy_reverter, deploy_token


@dataclass(frozen=True)
class TestTokens:
    """Checksum addresses of the session's test tokens (and a Reverter contract)."""

    __test__ = False  # not a test class, despite the name

    usdc: str  # standard ERC-20, 6 decimals, symbol USDC
    dai: str  # standard ERC-20, 18 decimals, symbol DAI
    usdt: str  # no-return (USDT-style) token, 6 decimals, symbol USDT
    reverter: str  # rejects any call/value: native sends to it get receipt status 0


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One automining anvil node (chain id 31337) per session / xdist worker."""
    node = Anvil()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def tokens(anvil: Anvil) -> TestTokens:
    """Deploy USDC-like (6), DAI-like (18) and USDT-like no-return (6) tokens once."""
    return TestTokens(
        usdc=deploy_token(
            anvil, "standard", decimals=6, symbol="USDC", name="USD Coin"
        ),
        dai=deploy_token(anvil, "standard", decimals=18, symbol="DAI", name="Dai"),
        usdt=deploy_token(anvil, "noreturn", decimals=6, symbol="USDT", name="Tether"),
        reverter=deploy_reverter(anvil),
    )


@pytest.fixture
def anvil_snapshot(anvil: Anvil) -> Iterator[Anvil]:
    """The session node, snapshotted before the test, reverted (automine on) after.

    Use it in any test that mines, reorgs or changes mining mode, so later tests see
    the same chain. Session fixtures (e.g. `tokens`) are set up before the snapshot.
    """
    snap = anvil.snapshot()
    try:
        yield anvil
    finally:
        if anvil.running:
            anvil.set_interval_mining(0)
            anvil.set_automine(True)
            if not anvil.revert(snap):
                raise RuntimeError(f"evm_revert({snap}) failed")
