"""A database of the bench's own: a SQLite file in a temporary folder, or a PostgreSQL
database created on the given server and dropped afterwards. No table is ever created
in the database a --database-url names."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ctrip_cli.db import engine as db_engine

PG_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database", choices=("sqlite", "postgresql", "both"), default="both"
    )
    parser.add_argument(
        "--database-url",
        default=PG_SERVER,
        help="PostgreSQL server to create (and drop) the bench's own database on",
    )


def kinds(args: argparse.Namespace) -> tuple[str, ...]:
    return ("sqlite", "postgresql") if args.database == "both" else (args.database,)


@contextmanager
def own_database(kind: str, server_url: str, tmp: Path) -> Iterator[str]:
    """The URL of a fresh, upgraded database used by this bench only."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
        _upgrade(url)
        yield url
        return
    name = f"ctrip_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server_url).set(database=name).render_as_string(False)
        _upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _upgrade(url: str) -> None:
    engine = db_engine.make_engine(url)
    db_engine.upgrade(engine)
    engine.dispose()
