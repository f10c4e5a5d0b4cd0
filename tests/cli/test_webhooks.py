"""`ctrip deliver-webhooks` and `ctrip webhooks list | retry` through the CLI."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from ctrip_cli import lifecycle
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db import queries
from ctrip_cli.db.models import WebhookEvent
from tests.conftest import NOW

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def add_event(url: str, *, status: str = "pending") -> str:
    engine = db_engine.make_engine(url)
    with db_engine.session_factory(engine)() as session, session.begin():
        event_id = queries.add_webhook_event(
            session,
            event_id=lifecycle.new_id("msg"),
            payment_id=None,
            event_type="payment.expired",
            url=None,
            body="{}",
            now=NOW,
        )
        if status != "pending":
            session.execute(
                sa.update(WebhookEvent)
                .where(WebhookEvent.id == event_id)
                .values(status=status, attempts=8)
            )
    engine.dispose()
    return event_id


def test_deliver_webhooks_json_is_one_object_of_the_contract_shape(ctrip):
    result = ctrip("deliver-webhooks", "--json", env={"CTRIP_WEBHOOK_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["job"] == "deliver-webhooks"
    assert data["chain"] is None
    assert data["skipped"] is None
    assert {"claimed", "delivered", "retrying", "failed", "elapsed_s"} <= set(data)
    assert data["claimed"] == 0


def test_event_without_url_is_skipped_and_nothing_leaks(ctrip, db_url):
    event_id = add_event(db_url)
    result = ctrip("deliver-webhooks", "--json", env={"CTRIP_WEBHOOK_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["no_url"] == 1
    assert SECRET.removeprefix("whsec_") not in result.output
    listed = ctrip("webhooks", "list", "--status", "skipped", "--json")
    assert [e["id"] for e in json.loads(listed.stdout)] == [event_id]


def test_bad_time_budget_is_a_usage_error(ctrip):
    result = ctrip("deliver-webhooks", "--time-budget", "soon")
    assert result.exit_code == 2
    assert "--time-budget 'soon'" in result.stderr


def test_pending_events_without_a_secret_exit_2(ctrip, db_url):
    add_event(db_url)
    result = ctrip("deliver-webhooks", "--json")
    assert result.exit_code == 2
    assert "CTRIP_WEBHOOK_SECRET is not set" in result.stderr
    failure = json.loads(result.stdout)  # --json: one object, a failure too
    assert (failure["job"], failure["error"]["exit_code"]) == ("deliver-webhooks", 2)


def test_retry_all_failed_requeues_and_unknown_ids_exit_2(ctrip, db_url):
    failed = add_event(db_url, status="failed")
    result = ctrip("webhooks", "retry", "--all-failed", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"requeued": 1, "ids": [failed]}
    [row] = json.loads(ctrip("webhooks", "list", "--json").stdout)
    assert (row["status"], row["attempts"]) == ("pending", 8)

    missing = ctrip("webhooks", "retry", "msg_missing")
    assert missing.exit_code == 2
    assert "msg_missing" in missing.stderr


def test_list_rejects_unknown_status_and_renders_a_table(ctrip, db_url):
    assert ctrip("webhooks", "list", "--status", "lost").exit_code == 2
    add_event(db_url)
    table = ctrip("webhooks", "list")
    assert table.exit_code == 0
    assert "payment.expired" in table.stdout
