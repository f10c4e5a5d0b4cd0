"""scan on PostgreSQL with a real anvil node: concurrent passes of the same chain never
double count, and bulk crediting behaves as on SQLite."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ctrip_cli.chain.evm import EvmChain
from ctrip_cli.db import locks
from ctrip_cli.db.models import Transfer, WebhookEvent
from ctrip_cli.jobs import scan as scan_job
from tests.evm import Anvil, send_native, token_transfer
from tests.evm_fixtures import TestTokens
from tests.integration.evm.scan_world import PAYER, ScanWorld, make_world

pytestmark = [pytest.mark.evm, pytest.mark.postgres]


@pytest.fixture
def world(
    anvil_snapshot: Anvil, tokens: TestTokens, pg_url: str, tmp_path: Path
) -> Iterator[ScanWorld]:
    w = make_world(anvil_snapshot, tokens, pg_url, tmp_path)
    yield w
    w.engine.dispose()


def _fund(world: ScanWorld, n: int) -> list[str]:
    world.fund_payer()
    ids = []
    for i in range(n):
        asset = ("ETH", "USDC", "DAI")[i % 3]
        pid = world.pay(asset, "2")
        address = world.payment(pid).address
        for _ in range(2):  # each pays in two halves
            if asset == "ETH":
                send_native(world.anvil, PAYER, address, 10**18)
            else:
                token = world.tokens.usdc if asset == "USDC" else world.tokens.dai
                units = 10**6 if asset == "USDC" else 10**18
                token_transfer(world.anvil, token, PAYER, address, units)
        ids.append(pid)
    return ids


def _scan_in_threads(world: ScanWorld, *, use_lock: bool) -> list[str]:
    outcomes: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def one() -> None:
        try:
            start.wait()
            with locks.try_job_lock(world.engine, "scan", "local") as held:
                if use_lock and not held:
                    outcomes.append("skipped")
                    return
                client = EvmChain.open(world.cfg)
                with world.session() as s:
                    scan_job.run(
                        s,
                        client,
                        cfg=world.cfg,
                        now=world.clock,
                        settings=world.settings.scan,
                    )
                client.close()
                outcomes.append("ran")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return outcomes


def _assert_counted_once(world: ScanWorld, ids: list[str]) -> None:
    with world.session() as s:
        n_transfers = s.scalar(sa.select(sa.func.count()).select_from(Transfer))
        detected = s.scalars(
            sa.select(WebhookEvent.payment_id).where(
                WebhookEvent.type == "payment.detected"
            )
        ).all()
    assert n_transfers == 2 * len(ids)
    assert sorted(detected) == sorted(ids)
    for pid in ids:
        p = world.payment(pid)
        assert p.status == "detected"
        assert p.amount_received == p.amount


@pytest.mark.parametrize(
    "use_lock", [True, False], ids=["job-lock", "constraints-only"]
)
def test_concurrent_scans_never_double_count(world: ScanWorld, use_lock: bool) -> None:
    ids = _fund(world, 6)

    outcomes = _scan_in_threads(world, use_lock=use_lock)

    assert "ran" in outcomes
    _assert_counted_once(world, ids)


def test_rescan_on_postgresql_is_idempotent(world: ScanWorld) -> None:
    ids = _fund(world, 3)
    first = world.scan()

    again = world.scan(from_block=first.from_block)

    assert first.transfers_recorded == 6
    assert again.transfers_recorded == 0
    _assert_counted_once(world, ids)
