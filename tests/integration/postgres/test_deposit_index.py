"""Deposit indexes are allocated atomically: concurrent creates never share one."""

from __future__ import annotations

import threading

import pytest

from ctrip_cli import payments
from ctrip_cli.chain.signer import KeyRing
from ctrip_cli.db import engine as db_engine


@pytest.mark.postgres
def test_fifty_concurrent_creates_get_fifty_addresses(pg_url, make_settings, now):
    settings = make_settings()
    engine = db_engine.make_engine(pg_url)
    factory = db_engine.session_factory(engine)
    keys = KeyRing.for_chain(settings.mnemonic, settings.chain("local"))
    barrier = threading.Barrier(50)
    created: list[dict] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            barrier.wait()
            with factory() as session, session.begin():
                created.append(
                    payments.create_payment(
                        session,
                        settings,
                        chain="local",
                        asset="ETH",
                        amount="1",
                        now=now,
                        keys=keys,
                    )
                )
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    assert errors == []
    assert len({p["address"] for p in created}) == 50
    assert len({p["id"] for p in created}) == 50
