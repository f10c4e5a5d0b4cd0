"""Benchmark payment creation.

From Python: `create_payment()` with one transaction per payment (how a merchant
backend calls it at checkout), on SQLite and on PostgreSQL (a database of its own,
created on the --database-url server and dropped at the end), interleaved with the
floor: the same rows (index counter, deposit address, payment, history) written through
the DBAPI connection itself (sqlite3, psycopg2) in a transaction of their own, no
SQLAlchemy and no key derivation. As a process: `ctrip payments create` against
`ctrip --help`, paired and interleaved with what any create must import (Typer,
pydantic, SQLAlchemy's ORM).

    python scripts/bench/create_bench.py [--payments 1000] [--cli-runs 9]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import benchdb  # noqa: E402
import cputime  # noqa: E402

from ctrip_cli import lifecycle  # noqa: E402
from ctrip_cli.chain.signer import KeyRing  # noqa: E402
from ctrip_cli.config import load_settings  # noqa: E402
from ctrip_cli.db import engine as db_engine  # noqa: E402
from ctrip_cli.payments import create_payment  # noqa: E402

CHAINS = REPO / "chains.yaml"
# A fixed mnemonic of the bench's own (the public test mnemonic would do on the dev
# chain, but this one proves nothing depends on it).
MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"


# The floor's statements, in the driver's own SQL: what any code writing these four
# rows with one commit pays (the counter, the address, the payment, its history).
_FLOOR_SQL = (
    "UPDATE deposit_index_counter SET next_index = next_index + 1 WHERE id = 1 "
    "RETURNING next_index",
    "INSERT INTO deposit_addresses (derivation_index, address, created_at) "
    "VALUES ({p}, {p}, {p})",
    "INSERT INTO payments (id, chain, asset, decimals, address, derivation_index, "
    "amount, amount_received, amount_swept, status, late, created_at, expires_at, "
    "updated_at) VALUES ({p}, 'local', 'ETH', 18, {p}, {p}, {p}, {p}, {p}, 'pending', "
    "{false}, {p}, {p}, {p})",
    "INSERT INTO payment_status_history (payment_id, to_status, reason, at) "
    "VALUES ({p}, 'pending', 'created', {p})",
)


class Floor:
    """The four rows of one payment through the DBAPI connection itself: no
    SQLAlchemy, no derivation, a fake address; one transaction each."""

    def __init__(self, engine: sa.Engine) -> None:
        self.conn = engine.raw_connection()
        self.sqlite = engine.dialect.name == "sqlite"
        mark, false = ("?", "0") if self.sqlite else ("%s", "false")
        self.sql = [q.format(p=mark, false=false) for q in _FLOOR_SQL]

    def payment(self, n: int) -> None:
        now = datetime.now(UTC)
        stamp: Any = now.replace(tzinfo=None).isoformat(" ") if self.sqlite else now
        amount: Any = str(1_500_000_000_000_000_000) if self.sqlite else 15 * 10**17
        zero: Any = "0" if self.sqlite else 0
        address = "0x" + hashlib.sha256(b"floor%d" % n).hexdigest()[:40]
        payment_id = lifecycle.new_id("pay")
        cur = self.conn.cursor()
        if self.sqlite:
            cur.execute("BEGIN IMMEDIATE")
        cur.execute(self.sql[0])
        index = int(cur.fetchone()[0]) - 1
        cur.execute(self.sql[1], (index, address, stamp))
        cur.execute(
            self.sql[2],
            (payment_id, address, index, amount, zero, zero, stamp, stamp, stamp),
        )
        cur.execute(self.sql[3], (payment_id, stamp))
        cur.close()
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


def bench_python(url: str, payments: int) -> dict[str, Any]:
    settings = load_settings(
        {"CTRIP_DATABASE_URL": url, "CTRIP_MNEMONIC": MNEMONIC}, chains_file=CHAINS
    )
    engine = db_engine.make_engine(url)
    factory = db_engine.session_factory(engine)

    def create() -> None:
        with factory() as session, session.begin():
            create_payment(
                session,
                settings,
                chain="local",
                asset="ETH",
                amount="1.5",
                now=datetime.now(UTC),
            )

    floors = Floor(engine)
    floor = floors.payment

    for n in range(20):  # warm-up: the key ring, compiled statements, pool
        create()
        floor(-1 - n)
    create_s, floor_s, cpu_s = [], [], 0.0
    for n in range(payments):
        c0, t0 = time.process_time(), time.perf_counter()
        create()
        create_s.append(time.perf_counter() - t0)
        cpu_s += time.process_time() - c0
        t0 = time.perf_counter()
        floor(n)
        floor_s.append(time.perf_counter() - t0)
    floors.close()
    engine.dispose()
    create_ms = sorted(x * 1000 for x in create_s)
    p50, p50_floor = statistics.median(create_s), statistics.median(floor_s)
    return {
        "create_p50_ms": round(p50 * 1000, 3),
        "create_p90_ms": round(create_ms[int(0.9 * len(create_ms))], 3),
        "create_cpu_ms": round(cpu_s * 1000 / payments, 3),
        "floor_p50_ms": round(p50_floor * 1000, 3),
        "create_over_floor": round(p50 / p50_floor, 2),
    }


def bench_derivation(count: int) -> dict[str, Any]:
    """One new deposit address from the cached account node, and a ring's first build."""
    t0 = time.perf_counter()
    keys = KeyRing.shared(SecretStr(MNEMONIC))
    keys.deposit_address(0)
    first_ms = (time.perf_counter() - t0) * 1000
    times = []
    for i in range(1, count + 1):
        t0 = time.perf_counter()
        keys.deposit_address(10_000_000 + i)
        times.append(time.perf_counter() - t0)
    return {
        "ring_first_address_ms": round(first_ms, 2),
        "next_address_p50_us": round(statistics.median(times) * 1e6, 1),
    }


def bench_cli(url: str, runs: int, tmp: Path) -> dict[str, Any]:
    env = cputime.child_env(
        PYTHONPATH=str(REPO),
        CTRIP_DATABASE_URL=url,
        CTRIP_MNEMONIC=MNEMONIC,
        CTRIP_CHAINS_FILE=str(CHAINS),
    )
    ctrip = [sys.executable, "-m", "ctrip_cli"]
    commands = {
        "help": [*ctrip, "--help"],
        # The imports a create cannot do without: the ORM alone, and with Typer and
        # pydantic (the CLI and the settings).
        "import_orm": [sys.executable, "-c", "import sqlalchemy.orm"],
        "import_floor": [
            sys.executable,
            "-c",
            "import typer, pydantic, sqlalchemy.orm",
        ],
        "payments_create": [
            *ctrip,
            *("payments", "create", "--chain", "local", "--asset", "ETH"),
            *("--amount", "1.5", "--json"),
        ],
    }
    times = cputime.interleaved(commands, runs=runs, env=env, cwd=str(tmp))
    return cputime.summary(times, "help")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=1000)
    parser.add_argument("--cli-runs", type=int, default=9)
    benchdb.add_arguments(parser)
    args = parser.parse_args()
    kinds = benchdb.kinds(args)
    report: dict[str, Any] = {
        "payments": args.payments,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "derivation": bench_derivation(1000),
    }
    for kind in kinds:
        with (
            tempfile.TemporaryDirectory() as tmp,
            benchdb.own_database(kind, args.database_url, Path(tmp)) as url,
        ):
            report[kind] = bench_python(url, args.payments)
            report[kind]["cli"] = bench_cli(url, args.cli_runs, Path(tmp))
    print(json.dumps(report, indent=2))
    ok = all(
        report[k]["create_p50_ms"] <= 2.0
        and report[k]["cli"]["over_help"]["payments_create"] <= 1.5
        for k in kinds
    )
    print("targets (create_payment p50 <= 2 ms, CLI <= 1.5x --help):", end=" ")
    print("met" if ok else "NOT met")


if __name__ == "__main__":
    main()
