"""`ctrip deliver-webhooks` as a real subprocess: a payment event reaches a receiver that
verifies it with the `standardwebhooks` library; a process SIGKILLed after sending and
before recording leads to a duplicate with the same webhook-id, never to a lost event."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from ctrip_cli import lifecycle, payments
from ctrip_cli.config import Settings, load_chains
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db import queries
from ctrip_cli.db.models import WebhookEvent
from tests.conftest import LOCAL_CHAINS_YAML, TEST_MNEMONIC_OWN
from tests.integration.webhooks.receiver import Receiver, running

pytestmark = pytest.mark.e2e


@pytest.fixture
def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def receiver(secret: str) -> Iterator[Receiver]:
    with running(secret) as rx:
        yield rx


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """On SQLite and on PostgreSQL (the `db_url` parameter)."""
    chains = tmp_path / "chains.yaml"
    chains.write_text(LOCAL_CHAINS_YAML)
    return Settings(
        database_url=SecretStr(db_url),
        chains_file=chains,
        chains=load_chains(chains, {}),
        mnemonic=SecretStr(TEST_MNEMONIC_OWN),
    )


def confirmed_payment_event(settings: Settings) -> tuple[str, str]:
    """(payment id, event id) of a new payment on the dev chain, confirmed."""
    engine = db_engine.make_engine(settings.database_url.get_secret_value())
    now = datetime.now(UTC)
    with db_engine.session_factory(engine)() as session, session.begin():
        created = payments.create_payment(
            session, settings, chain="local", asset="USDC", amount="12.5", now=now
        )
        payment = queries.get_payment(session, created["id"])
        assert payment is not None
        event_id = lifecycle.emit(session, payment, "payment.confirmed", now=now)
    engine.dispose()
    return created["id"], event_id


def ctrip(
    settings: Settings, secret: str, receiver: Receiver, *args: str
) -> subprocess.Popen[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "CTRIP_DATABASE_URL": settings.database_url.get_secret_value(),
        "CTRIP_CHAINS_FILE": str(settings.chains_file),
        "CTRIP_WEBHOOK_URL": receiver.url("/ok"),
        "CTRIP_WEBHOOK_SECRET": secret,
        "CTRIP_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "ctrip_cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_subprocess_delivers_a_verifiable_payment_webhook(settings, secret, receiver):
    payment_id, event_id = confirmed_payment_event(settings)
    proc = ctrip(
        settings, secret, receiver, "deliver-webhooks", "--json", "--time-budget", "20s"
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    [line] = out.splitlines()
    result = json.loads(line)
    assert result["job"] == "deliver-webhooks"
    assert (result["claimed"], result["delivered"]) == (1, 1)
    [request] = receiver.requests
    assert request.verified is True
    assert request.headers["webhook-id"] == event_id
    body = json.loads(request.body)
    assert body["type"] == "payment.confirmed"
    assert body["data"]["id"] == payment_id
    assert body["data"]["amount_base_units"] == "12500000"
    assert secret.removeprefix("whsec_") not in out + err


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sigkill_after_sending_redelivers_with_the_same_webhook_id(
    settings, secret, receiver
):
    _, event_id = confirmed_payment_event(settings)
    proc = ctrip(settings, secret, receiver, "deliver-webhooks", "--json")
    # The receiver kills the pass while the request is in flight: sent, not recorded.
    receiver.on_request = lambda _: os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    receiver.on_request = None

    engine = db_engine.make_engine(settings.database_url.get_secret_value())
    with engine.begin() as conn:
        leased = conn.execute(
            sa.select(WebhookEvent.status, WebhookEvent.lease_until)
        ).one()
        assert leased.status == "pending"
        assert leased.lease_until is not None
        # Expire the dead run's lease (instead of waiting for it).
        conn.execute(
            sa.update(WebhookEvent).values(
                lease_until=datetime.now(UTC) - timedelta(seconds=1)
            )
        )
    engine.dispose()

    proc = ctrip(settings, secret, receiver, "deliver-webhooks", "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["delivered"] == 1
    assert receiver.ids() == [event_id, event_id]
    assert all(r.verified for r in receiver.requests)
