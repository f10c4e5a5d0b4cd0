"""Shared fixtures: databases (SQLite template copies, PostgreSQL template databases),
settings, a fixed clock and the CLI runner. EVM fixtures live in tests/evm_fixtures.py."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ctrip_cli.config import Settings, load_chains
from ctrip_cli.db import engine as db_engine

PG_ADMIN_URL = os.environ.get(
    "CTRIP_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
# A mnemonic of the test suite's own: public ones (the BIP-39 vectors, anvil's) are
# refused on the suite's non-dev `ethereum` chain.
TEST_MNEMONIC_OWN = (
    "run have swamp swim conduct ridge vibrant amount predict result lend sadness"
)
NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = db_engine.make_engine(f"sqlite:///{path}")
    db_engine.upgrade(engine)
    engine.dispose()
    return path


def _pg_admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database per xdist worker; tests clone it."""
    # Unique per test session: several sessions may share one PostgreSQL server.
    name = f"ctrip_tpl_{_worker()}_{os.getpid()}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = db_engine.make_engine(
        make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
    )
    db_engine.upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "ctrip.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database cloned from the migrated template, dropped afterwards."""
    template = request.getfixturevalue("pg_template")
    name = f"ctrip_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = db_engine.make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    with db_engine.session_factory(engine)() as s:
        yield s


@pytest.fixture
def now() -> datetime:
    return NOW


LOCAL_CHAINS_YAML = """
chains:
  local:
    chain_id: 31337
    rpc_urls: ["${CTRIP_LOCAL_RPC_URL:-http://127.0.0.1:8545}"]
    confirmations: 2
    native: {symbol: ETH, decimals: 18}
    tokens:
      USDC: {address: "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals: 6}
      DAI: {address: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", decimals: 18}
    treasury: "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
    block_time_s: 1
  ethereum:
    chain_id: 1
    rpc_urls: ["http://127.0.0.1:9"]
    confirmations: 12
    native: {symbol: ETH, decimals: 18}
    tokens:
      USDT: {address: "0xdAC17F958D2ee523a2206206994597C13D831ec7", decimals: 6}
"""


@pytest.fixture
def make_settings(db_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings on the test database; keyword overrides replace fields."""

    def build(
        chains_yaml: str = LOCAL_CHAINS_YAML,
        env: dict[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        path = tmp_path / f"chains-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(chains_yaml)
        from pydantic import SecretStr

        fields: dict[str, Any] = {
            "database_url": SecretStr(db_url),
            "chains_file": path,
            "chains": load_chains(path, env or {}),
            "mnemonic": SecretStr(TEST_MNEMONIC_OWN),
        }
        fields.update(overrides)
        return Settings(**fields)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def cli_env(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Environment for CLI tests: the test database, a chains file, a mnemonic."""
    chains = tmp_path / "chains.yaml"
    chains.write_text(LOCAL_CHAINS_YAML)
    env = {
        "CTRIP_DATABASE_URL": db_url,
        "CTRIP_CHAINS_FILE": str(chains),
        "CTRIP_MNEMONIC": TEST_MNEMONIC_OWN,
        "COLUMNS": "160",
    }
    for key in list(os.environ):
        if key.startswith("CTRIP_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return env


@pytest.fixture
def ctrip(cli_env: dict[str, str]) -> Callable[..., Any]:
    """Run the CLI in-process: `ctrip("payments", "list", "--json")` → click Result."""
    from ctrip_cli.cli import app

    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
        return runner.invoke(
            app, list(args), env={**cli_env, **(env or {})}, catch_exceptions=False
        )

    return invoke
