"""Non-blocking per-(job, scope) locks that a killed process can never leave held.

PostgreSQL: `pg_try_advisory_lock` on a dedicated connection; the server releases it when
the session ends, including when the process is killed. SQLite: `flock` on a file beside
the database; the kernel releases it when the process dies.
"""

from __future__ import annotations

import enum
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, exc, text

from ctrip_cli.db.engine import sqlite_path


class JobLock(enum.StrEnum):
    SCAN = "scan"
    CONFIRM = "confirm"
    SWEEP = "sweep"
    DELIVER_WEBHOOKS = "deliver-webhooks"
    RECONCILE = "reconcile"


def lock_key(job: str, scope: str) -> int:
    """A stable signed 64-bit advisory-lock key for (job, scope)."""
    digest = hashlib.blake2b(f"ctrip:{job}:{scope}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def try_job_lock(engine: Engine, job: str, scope: str = "") -> Iterator[bool]:
    """Yield True while holding the (job, scope) lock, False if another pass holds it."""
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, lock_key(job, scope)) as held:
            yield held
    else:
        with _file_lock(_lock_file(engine, job, scope)) as held:
            yield held


@contextmanager
def _pg_lock(engine: Engine, key: int) -> Iterator[bool]:
    # A dedicated connection: the lock lives exactly as long as this session.
    conn = engine.connect()
    try:
        held = bool(
            conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        )
        conn.commit()
        try:
            yield held
        finally:
            if held:
                _unlock(conn, key)
    finally:
        conn.close()


def _unlock(conn: Connection, key: int) -> None:
    try:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        conn.commit()
    except exc.DBAPIError:
        # The session is gone (server restart, pg_terminate_backend): the server has
        # released its advisory locks with it. The pass's own error, if any, is what
        # the operator needs to see.
        pass


def _lock_file(engine: Engine, job: str, scope: str) -> Path:
    db = sqlite_path(engine)
    name = f"{job}.{scope or 'all'}.lock"
    if db is None:
        return Path(tempfile.gettempdir()) / f"ctrip-memory-{os.getpid()}-{name}"
    return db.with_name(f"{db.name}.{name}")


@contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
