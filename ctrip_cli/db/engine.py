"""Engines, sessions and schema upgrades for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from ctrip_cli.errors import ConfigError, DatabaseError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine tuned for short concurrent passes.

    SQLite gets WAL, a busy timeout and `BEGIN IMMEDIATE`, so concurrent writers queue
    instead of failing halfway through a transaction.

    Raises:
        ConfigError: the URL cannot be parsed or names an unsupported database.
    """
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise ConfigError("CTRIP_DATABASE_URL: not a database URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise ConfigError(
        f"CTRIP_DATABASE_URL: unsupported database {backend!r}; use sqlite or postgresql"
    )


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 60, "isolation_level": None})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def sqlite_path(engine: Engine) -> Path | None:
    """The database file of a SQLite engine (None for PostgreSQL or in-memory SQLite)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(database).resolve()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autobegin=True)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn driver-level failures into DatabaseError, naming neither URL nor password.

    Raises:
        DatabaseError: the database is unreachable or refused a statement.
    """
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as e:
        if "no such table" in str(getattr(e, "orig", e)):  # SQLite's missing schema
            raise DatabaseError(
                "The database schema is missing or old; run `ctrip db upgrade`"
            ) from None
        reason = str(getattr(e, "orig", e)).strip().splitlines()[0] if e else ""
        raise DatabaseError(
            f"Database unavailable ({reason}); check that it is running and that "
            "CTRIP_DATABASE_URL is right, then rerun the pass"
        ) from None
    except exc.ProgrammingError as e:
        if "does not exist" in str(e.orig) or "no such table" in str(e.orig):
            raise DatabaseError(
                "The database schema is missing or old; run `ctrip db upgrade`"
            ) from None
        raise


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the schema with Alembic, inside one connection."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()
