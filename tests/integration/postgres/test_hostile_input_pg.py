"""Issue cases that only PostgreSQL shows: column widths, NUL characters, concurrent
schema upgrades, and database errors that must not print their parameters."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ctrip_cli.db import engine as db_engine
from ctrip_cli.db import locks
from ctrip_cli.db.models import Base, WebhookAttempt
from ctrip_cli.errors import DatabaseError
from tests.conftest import PG_ADMIN_URL, REPO
from tests.unit.jobs.test_deliver_webhooks import add_event, attempts, deliver, event

pytestmark = pytest.mark.postgres
LONG_HOST = ".".join(["a" * 60] * 5)  # 304 characters: past VARCHAR(255)


@pytest.fixture
def pg_session(pg_url: str) -> Iterator[Session]:
    engine = db_engine.make_engine(pg_url)
    with db_engine.session_factory(engine)() as s:
        yield s
    engine.dispose()


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A fresh database without any schema."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"ctrip_empty_{os.getpid()}_{time.monotonic_ns()}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_stored_long_url_is_recorded_and_the_rest_of_the_batch_delivered(
    pg_session, now
):
    # An event written before URLs were validated: its host alone exceeds 255.
    [long] = add_event(pg_session, now, url=f"https://{LONG_HOST}/hook")
    good = add_event(pg_session, now, n=3)
    result = deliver(
        pg_session, now, lambda r: httpx.Response(200), retry_ladder_s=(300,)
    )
    assert (result.delivered, result.retrying) == (3, 1)
    assert all(event(pg_session, e).status == "delivered" for e in good)
    assert all(len(attempts(pg_session, e)) == 1 for e in good)
    [attempt] = attempts(pg_session, long)
    assert attempt.endpoint == f"https://{LONG_HOST}:443"
    assert event(pg_session, long).last_error == (
        "refused: the host is longer than 253 characters"
    )


def test_a_nul_in_a_response_costs_only_its_own_attempt_row(pg_session, now):
    [hostile] = add_event(pg_session, now, url="https://hostile.example/hook")
    good = add_event(pg_session, now, n=2)

    def handler(request: httpx.Request) -> httpx.Response:
        body = b"ok\x00ok" if request.url.host == "hostile.example" else b"ok"
        return httpx.Response(200, content=body)

    result = deliver(pg_session, now, handler)
    assert result.delivered == 3
    assert all(event(pg_session, e).status == "delivered" for e in [hostile, *good])
    [attempt] = attempts(pg_session, hostile)
    assert attempt.response_excerpt == "ok\ufffdok"  # PostgreSQL text holds no NUL


def test_migrations_match_the_models_and_widen_the_endpoint(pg_url):
    engine = db_engine.make_engine(pg_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        column = next(
            c
            for c in sa.inspect(conn).get_columns("webhook_attempts")
            if c["name"] == "endpoint"
        )
    engine.dispose()
    assert isinstance(column["type"], sa.Text)


def _upgrade(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ctrip_cli", "db", "upgrade"],
        cwd=REPO,
        env={**os.environ, "CTRIP_DATABASE_URL": url, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_upgrades_at_once_on_a_fresh_database_both_succeed(empty_pg_url):
    for _ in range(4):  # the race lost 4 times in 4 before the lock
        runs = [_upgrade(empty_pg_url), _upgrade(empty_pg_url)]
        outputs = [run.communicate(timeout=120) for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        assert all("Traceback" not in err for _, err in outputs)
        engine = sa.create_engine(empty_pg_url)
        with engine.begin() as conn:  # start the next round from nothing again
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()


def test_an_upgrade_waits_for_the_lock_another_upgrade_holds(empty_pg_url):
    engine = sa.create_engine(empty_pg_url)
    with engine.connect() as holder:
        holder.execute(
            sa.text("SELECT pg_advisory_xact_lock(:k)"),
            {"k": locks.lock_key("db-upgrade", "")},
        )
        run = _upgrade(empty_pg_url)
        time.sleep(3)  # time enough to migrate, were it not waiting
        assert run.poll() is None
        tables = sa.inspect(holder).get_table_names()
        assert "alembic_version" not in tables
        holder.rollback()  # releases the lock
    _, err = run.communicate(timeout=120)
    engine.dispose()
    assert run.returncode == 0, err


def test_a_refused_statement_names_neither_values_nor_parameters(pg_session, now):
    secret = "https://user:hunter2@merchant.example/hook?token=s3cret"
    with (
        pytest.raises(DatabaseError) as info,
        db_engine.translate_errors(),
        pg_session.begin(),
    ):
        pg_session.execute(
            sa.text(
                "INSERT INTO job_runs (job, chain, started_at, outcome, error) "
                "VALUES (:job, 'c', now(), 'ok', :e)"
            ),
            {"job": "x" * 40, "e": secret},
        )
    message = str(info.value)
    assert "value too long" in message
    assert "hunter2" not in message
    assert "s3cret" not in message
    assert "x" * 40 not in message
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_attempt_rows_hold_the_longest_endpoint_validation_allows(pg_session, now):
    # The widest endpoint validation allows: https://<253-character host>:65535.
    host = ".".join(["b" * 63] * 3 + ["c" * 61])
    assert len(host) == 253
    [eid] = add_event(pg_session, now, url=f"https://{host}:65535/hook")
    deliver(pg_session, now, lambda r: httpx.Response(204))
    [attempt] = attempts(pg_session, eid)
    assert attempt.endpoint == f"https://{host}:65535"
    assert isinstance(attempt, WebhookAttempt)
