"""scan and confirm through endpoints that limit what they answer (the provider
emulator in front of anvil): every profile detects and confirms the same payments as
an unlimited node, and each limit was really met on the way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctrip_cli.db.models import ScanCursor
from scripts.emulator import Emulator
from tests.evm import Anvil, balance_of, native_balance, send_native, token_transfer
from tests.evm_fixtures import TestTokens
from tests.integration.evm.scan_world import PAYER, ScanWorld, make_world

pytestmark = pytest.mark.evm
ETH = 10**18

# profile, overrides, the refusal the emulator must have counted (None: none needed)
PROFILES: list[tuple[str, dict[str, Any], str | None]] = [
    # geth's limits scaled to anvil's tiny blocks: a 30 kB response cap per batch.
    ("geth", {"max_batch_response_bytes": 30_000, "max_batch_calls": 20}, None),
    ("hosted", {"max_batch_calls": 5, "logs_max_blocks": 3}, "batch_too_large"),
    ("hosted-413", {"max_batch_calls": 5, "logs_max_blocks": 3}, "batch_too_large"),
    ("quicknode-free", {}, None),
    ("alchemy-free", {"logs_max_blocks": 4}, None),
    ("public", {"rate_limit_calls_per_s": 40}, "method_missing"),
    ("public-date", {"rate_limit_calls_per_s": 40}, "method_missing"),
    ("gateway", {"rate_limit_calls_per_s": 40}, "method_missing"),
    ("no-batch", {}, "no_batching"),
    ("bsc-public", {}, None),
    ("truncated", {"truncate_after_bytes": 8_000}, None),
]


@pytest.fixture
def world(
    anvil_snapshot: Anvil, tokens: TestTokens, sqlite_url: str, tmp_path: Path
) -> Iterator[ScanWorld]:
    w = make_world(anvil_snapshot, tokens, sqlite_url, tmp_path)
    yield w
    w.engine.dispose()


def _pay_every_asset(world: ScanWorld, *, native: bool = True) -> dict[str, int]:
    """One payment per asset kind, paid in full on chain; {payment id: base units}."""
    world.fund_payer()
    wanted = {
        "DAI": ("dai", "3.000000000000000001", 3 * ETH + 1),  # 18 decimals
        "USDC": ("usdc", "12.5", 12_500_000),  # 6 decimals
        "USDT": ("usdt", "7", 7_000_000),  # transfer() returns nothing
    }
    paid = {}
    for asset, (attr, amount, units) in wanted.items():
        pid = world.pay(asset, amount)
        token = getattr(world.tokens, attr)
        token_transfer(world.anvil, token, PAYER, world.payment(pid).address, units)
        paid[pid] = units
    if native:
        pid = world.pay("ETH", "1.5")
        send_native(world.anvil, PAYER, world.payment(pid).address, 3 * ETH // 2)
        paid[pid] = 3 * ETH // 2
    # Filler blocks, so ranges span more than the logs caps.
    world.anvil.mine(12)
    return paid


def _through(world: ScanWorld, emu: Emulator) -> ScanWorld:
    cfg = world.cfg.model_copy(update={"rpc_urls": [_secret(emu.url)]})
    world.settings.chains["local"] = cfg
    return world


def _secret(url: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(url)


@pytest.mark.parametrize(("profile", "overrides", "refusal"), PROFILES)
@pytest.mark.parametrize("native", [True, False], ids=["with-native", "tokens-only"])
def test_every_profile_detects_and_confirms_every_payment(
    world: ScanWorld,
    profile: str,
    overrides: dict[str, Any],
    refusal: str | None,
    native: bool,
) -> None:
    paid = _pay_every_asset(world, native=native)
    with Emulator(world.anvil.url, profile, **overrides) as emu:
        _through(world, emu)
        scanned = world.scan()
        confirmed = world.confirm()
        seen = emu.snapshot()
    assert scanned.blocks_scanned > 0
    for pid, units in paid.items():
        p = world.payment(pid)
        assert (p.status, p.amount_received) == ("confirmed", units), (profile, pid)
    assert confirmed.confirmed == len(paid)
    if refusal is not None and (native or refusal != "method_missing"):
        assert seen["limited"].get(refusal, 0) > 0, seen["limited"]
    if profile == "geth":
        assert seen["max_calls_in_1s"] > 0


def _lagging_world(world: ScanWorld) -> str:
    world.fund_payer()
    pid = world.pay("USDC", "5")
    world.anvil.mine(2)
    token_transfer(
        world.anvil, world.tokens.usdc, PAYER, world.payment(pid).address, 5_000_000
    )
    return pid


def test_a_lagging_backend_is_caught_by_the_blooms_and_read_again(
    world: ScanWorld,
) -> None:
    # Tokens only: the scan reads eth_getLogs, which one backend in two answers
    # without the newest blocks' logs; the blooms in the headers give it away.
    pid = _lagging_world(world)
    with Emulator(world.anvil.url, "lagging", lag_every=2, lag_blocks=3) as emu:
        _through(world, emu)
        # Take the good backend's turn, so the scan's first eth_getLogs lags.
        flt = {"fromBlock": "0x0", "toBlock": "0x0"}
        httpx.post(
            emu.url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [flt]},
        )
        world.scan()
        seen = emu.snapshot()
    p = world.payment(pid)
    assert (p.status, p.amount_received) == ("detected", 5_000_000)
    assert seen["limited"].get("lagging_logs", 0) > 0, seen["limited"]


def test_a_backend_that_always_lags_never_moves_the_cursor_past_a_payment(
    world: ScanWorld,
) -> None:
    from ctrip_cli.errors import ChainError

    pid = _lagging_world(world)
    paid_at = world.anvil.block_number()
    with Emulator(world.anvil.url, "lagging", lag_every=1, lag_blocks=3) as emu:
        _through(world, emu)
        with pytest.raises(ChainError, match="kept changing"):
            world.scan()
    with world.session() as s:
        cursor = s.get(ScanCursor, "local")
    assert cursor is None or cursor.block_number < paid_at
    assert world.payment(pid).status == "pending"


def test_learnt_limits_are_kept_so_the_next_pass_does_not_fail_first(
    world: ScanWorld,
) -> None:
    from ctrip_cli.chain.evm import EvmChain

    _pay_every_asset(world)
    with Emulator(world.anvil.url, "hosted", max_batch_calls=5) as emu:
        _through(world, emu)
        first = EvmChain.open(world.cfg)
        first.block_headers(range(20))
        learnt = first.rpc.learnt_limits()
        first.close()
        emu.reset()
        second = EvmChain.open(world.cfg, limits=learnt)
        second.block_headers(range(20))
        second.close()
        again = emu.snapshot()
    (limits,) = learnt.values()
    assert limits.max_batch is not None
    assert limits.max_batch <= 5
    assert again["limited"] == {}


SWEEP_PROFILES = [
    p
    for p in PROFILES
    if p[0]
    in (
        "geth",
        "hosted-413",
        "public-date",
        "gateway",
        "no-batch",
        "truncated",
        "bsc-public",
        "quicknode-free",
    )
]


@pytest.mark.parametrize(("profile", "overrides", "refusal"), SWEEP_PROFILES)
def test_sweep_settles_every_asset_through_the_profile(
    world: ScanWorld, profile: str, overrides: dict[str, Any], refusal: str | None
) -> None:
    from ctrip_cli.chain.evm import EvmChain
    from ctrip_cli.chain.signer import KeyRing
    from ctrip_cli.config import to_checksum
    from ctrip_cli.jobs import sweep as sweep_job

    treasury = to_checksum("0x" + "5e" * 20)
    paid = _pay_every_asset(world)
    keys = KeyRing.for_chain(world.settings.mnemonic, world.cfg)
    send_native(
        world.anvil, PAYER, keys.address(world.settings.sweep.gas_payer_path), ETH
    )
    with Emulator(world.anvil.url, profile, **overrides) as emu:
        _through(world, emu)
        world.settings.chains["local"] = world.cfg.model_copy(
            update={"treasury": treasury}
        )
        world.scan()
        world.confirm()
        for _ in range(6):
            client = EvmChain.open(world.cfg)
            try:
                with world.session() as s:
                    sweep_job.run(
                        s,
                        client,
                        cfg=world.cfg,
                        keys=keys,
                        now=world.clock,
                        settings=world.settings.sweep,
                    )
            finally:
                client.close()
            if all(world.payment(pid).status == "settled" for pid in paid):
                break
            world.anvil.mine(world.cfg.confirmations)
    assert {world.payment(pid).status for pid in paid} == {"settled"}
    for attr, units in (
        ("usdc", 12_500_000),
        ("dai", 3 * ETH + 1),
        ("usdt", 7_000_000),
    ):
        assert balance_of(world.anvil, getattr(world.tokens, attr), treasury) == units
    assert 0 < native_balance(world.anvil, treasury) < 3 * ETH // 2
