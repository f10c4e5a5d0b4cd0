"""Job locks: non-blocking, per (job, scope), and released when the holder is killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.locks import try_job_lock

HOLDER = """
import sys, time
from ctrip_cli.db import engine as db_engine
from ctrip_cli.db.locks import try_job_lock
eng = db_engine.make_engine(sys.argv[1])
with try_job_lock(eng, "scan", "local") as held:
    print("held" if held else "busy", flush=True)
    time.sleep(60)
"""


def test_second_holder_is_refused_until_release(engine):
    other = db_engine.make_engine(str(engine.url.render_as_string(hide_password=False)))
    with try_job_lock(engine, "scan", "local") as first:
        assert first
        with try_job_lock(other, "scan", "local") as second:
            assert not second
        with try_job_lock(other, "scan", "bsc") as other_scope:
            assert other_scope
        with try_job_lock(other, "confirm", "local") as other_job:
            assert other_job
    with try_job_lock(other, "scan", "local") as after:
        assert after
    other.dispose()


def test_killed_holder_cannot_leave_the_lock_stuck(engine):
    url = engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        with try_job_lock(engine, "scan", "local") as held:
            assert not held
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while True:  # PostgreSQL notices the dead backend within moments
        with try_job_lock(engine, "scan", "local") as held:
            if held or time.monotonic() > deadline:
                break
        time.sleep(0.05)
    assert held


@pytest.mark.postgres
def test_lock_session_killed_mid_pass_is_not_a_second_error(pg_url):
    import sqlalchemy as sa

    engine = db_engine.make_engine(pg_url)
    with try_job_lock(engine, "sweep", "local") as held:
        assert held
        with engine.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND pid <> pg_backend_pid() "
                    "AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())"
                )
            )
            conn.commit()
    with try_job_lock(engine, "sweep", "local") as again:
        assert again
    engine.dispose()
