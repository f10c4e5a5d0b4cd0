"""Engines, sessions and schema upgrades for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from ctrip_cli import redact
from ctrip_cli.errors import ConfigError, DatabaseError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine tuned for short concurrent passes.

    SQLite gets WAL with durable commits, a busy timeout and `BEGIN IMMEDIATE`, so concurrent writers queue
    instead of failing halfway through a transaction. Bound parameters are never put
    in error messages (they can hold webhook URLs and payment data).

    Raises:
        ConfigError: the URL cannot be parsed, names an unsupported database or driver,
            or has options the driver does not know.
    """
    parsed = _parse_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.query:
            raise _url_error(url, "SQLite URLs take no ?options (ctrip sets its own)")
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        return _pg_engine(url, parsed)
    raise _url_error(url, f"unsupported database {backend!r}; use sqlite or postgresql")


def _url_error(url: str, problem: str) -> ConfigError:
    return ConfigError(f"CTRIP_DATABASE_URL {redact.redact_url(url)!r}: {problem}")


def _parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a non-numeric port raises only when read
    except (exc.ArgumentError, ValueError, TypeError):
        raise _url_error(
            url, "not a database URL (e.g. postgresql+psycopg2://user@host:5432/db)"
        ) from None
    if parsed.port is not None and not 1 <= parsed.port <= 65_535:
        raise _url_error(url, f"port {parsed.port} is not from 1 to 65535")
    return parsed


def _pg_engine(url: str, parsed: URL) -> Engine:
    if parsed.drivername not in ("postgresql", "postgresql+psycopg2"):
        raise _url_error(
            url,
            f"driver {parsed.drivername!r} is not supported; use postgresql+psycopg2",
        )
    # psycopg2 is the driver ctrip depends on; SQLAlchemy 2.1 would pick psycopg 3.
    parsed = parsed.set(drivername="postgresql+psycopg2")
    engine = create_engine(
        parsed, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True
    )
    import psycopg2.extensions

    _args, kwargs = engine.dialect.create_connect_args(parsed)
    try:
        psycopg2.extensions.make_dsn(**kwargs)  # refuses unknown option names
    except psycopg2.ProgrammingError as e:
        raise _url_error(url, str(e).strip().splitlines()[0]) from None
    return engine


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(
        url,
        connect_args={"timeout": 60, "isolation_level": None},
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # Durable commits: in WAL mode FULL syncs the log at every commit (one fsync);
        # NORMAL may lose the last commits on power loss or an OS crash. Set here, as
        # builds differ in their WAL default.
        # https://www.sqlite.org/pragma.html#pragma_synchronous
        cur.execute("PRAGMA synchronous=FULL")
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


_SCHEMA_MISSING = "The database schema is missing or old; run `ctrip db upgrade`"


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn driver-level failures into ctrip errors that name neither URL, password
    nor bound parameters: only the first line of the driver's message is kept (later
    lines, such as PostgreSQL's DETAIL, can quote row values).

    Raises:
        ConfigError: CTRIP_DATABASE_URL names something that is not a database.
        DatabaseError: the database is unreachable or refused a statement.
    """
    try:
        yield
    except exc.DBAPIError as e:
        raise _translated(e) from None


def _translated(e: exc.DBAPIError) -> Exception:
    reason = (str(e.orig).strip().splitlines() or [type(e.orig).__name__])[0]
    if "no such table" in reason or (
        isinstance(e, exc.ProgrammingError) and "does not exist" in reason
    ):
        return DatabaseError(_SCHEMA_MISSING)
    if "file is not a database" in reason or "invalid dsn" in reason:
        return ConfigError(f"CTRIP_DATABASE_URL: {reason}; check the URL")
    if isinstance(e, exc.OperationalError | exc.InterfaceError):
        return DatabaseError(
            f"Database unavailable ({reason}); check that it is running and that "
            "CTRIP_DATABASE_URL is right, then rerun the pass"
        )
    return DatabaseError(
        f"The database refused a statement ({type(e.orig).__name__}: {reason}); "
        "nothing of it was committed"
    )


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the schema with Alembic, inside one connection.

    On PostgreSQL a transaction-scoped advisory lock serialises concurrent upgrades
    (Kubernetes may start the upgrade Job twice): the second waits for the first to
    commit, then finds the schema current.
    """
    from alembic import command
    from alembic.config import Config

    from ctrip_cli.db import locks

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:k)"),
                {"k": locks.lock_key("db-upgrade", "")},
            )
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()
