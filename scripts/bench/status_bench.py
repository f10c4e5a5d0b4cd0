"""`ctrip status` against a growing job_runs history: the cost must not grow with it.

    python scripts/bench/status_bench.py [--small 10000] [--big 1000000] [--runs 5]

Fills job_runs of a fresh PostgreSQL database (9 pass/chain pairs, one run a second)
and times `jobs.status.run` (no RPC probes) with the small and the big history, in the
same run. Prints one JSON report; the ratio big/small is the figure to watch (~1).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from ctrip_cli.config import StatusSettings, load_chains
from ctrip_cli.db import engine as db_engine
from ctrip_cli.jobs import status as status_job

ADMIN = os.environ.get(
    "CTRIP_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
FILL = """
INSERT INTO job_runs (job, chain, started_at, finished_at, outcome, summary)
SELECT (ARRAY['scan','confirm','sweep'])[1 + i % 3],
       (ARRAY['ethereum','bsc','polygon'])[1 + i % 7 % 3],
       now() - (i || ' seconds')::interval,
       now() - (i || ' seconds')::interval + interval '1 second',
       CASE WHEN i % 50 = 0 THEN 'error' ELSE 'ok' END, '{"to_block": 1}'
FROM generate_series(1, :n) i
"""


def timed(engine: sa.Engine, n: int, runs: int) -> float:
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE job_runs"))
        conn.execute(sa.text(FILL), {"n": n})
        conn.execute(sa.text("ANALYZE job_runs"))
    chains = load_chains(Path(__file__).resolve().parents[2] / "chains.yaml", {})
    now, settings = datetime.now(UTC), StatusSettings()
    with db_engine.session_factory(engine)() as session:
        status_job.run(session, {}, chains=chains, now=now, settings=settings)
        started = time.perf_counter()
        for _ in range(runs):
            status_job.run(session, {}, chains=chains, now=now, settings=settings)
    return (time.perf_counter() - started) / runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    name = f"ctrip_bench_status_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = db_engine.make_engine(
        sa.engine.make_url(ADMIN).set(database=name).render_as_string(False)
    )
    try:
        db_engine.upgrade(engine)
        small = timed(engine, args.small, args.runs)
        big = timed(engine, args.big, args.runs)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    report = {
        "job_runs_small": args.small,
        "job_runs_big": args.big,
        "status_ms_small": round(small * 1000, 1),
        "status_ms_big": round(big * 1000, 1),
        "ratio_big_small": round(big / small, 2),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
