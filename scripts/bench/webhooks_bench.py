"""Benchmark `deliver-webhooks`: deliveries per second from one process to a local
receiver that answers every request after 50 ms, against one-at-a-time delivery timed
in the same run; then a pass against endpoints that never answer, which must still end
within its time budget.

The receiver is an asyncio HTTP/1.1 server (keep-alive) in a separate process, listening
on several ports (endpoints), so it can take the concurrency and does not share the GIL
with the sender. Each delivery is the full job: claim (lease committed), signed POST,
attempt recorded, on SQLite (default) or PostgreSQL (--database-url).

    python scripts/bench/webhooks_bench.py [--events 3000] [--endpoints 16] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ctrip_cli import lifecycle  # noqa: E402
from ctrip_cli.config import WebhookSettings  # noqa: E402
from ctrip_cli.db import engine as db_engine  # noqa: E402
from ctrip_cli.db import queries  # noqa: E402
from ctrip_cli.jobs import deliver_webhooks as job  # noqa: E402

ANSWER_S = 0.05
BODY = json.dumps(
    {
        "type": "payment.confirmed",
        "timestamp": "2026-11-29T12:00:00Z",
        "data": {
            "id": "pay_" + "0" * 32,
            "chain": "bsc",
            "asset": "USDT",
            "amount": "12.5",
            "amount_base_units": "12500000000000000000",
            "status": "confirmed",
        },
    }
)


# --- the receiver (its own process) --------------------------------------------------


async def _serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if head.startswith(b"POST /hang"):
                await asyncio.sleep(3600)
            await asyncio.sleep(ANSWER_S)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _receiver_main(ports: list[int], ready: Any) -> None:
    async def main() -> None:
        servers = [
            await asyncio.start_server(_serve_connection, "127.0.0.1", 0, backlog=1024)
            for _ in range(len(ports))
        ]
        for i, server in enumerate(servers):
            ports[i] = server.sockets[0].getsockname()[1]
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def start_receiver(endpoints: int) -> tuple[multiprocessing.Process, list[int]]:
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Manager().list([0] * endpoints)
    ready = ctx.Event()
    proc = ctx.Process(target=_receiver_main, args=(ports, ready), daemon=True)
    proc.start()
    if not ready.wait(30):
        raise SystemExit("receiver did not start")
    return proc, list(ports)


# --- the sender ----------------------------------------------------------------------


def fresh_database(url: str | None, tmp: Path) -> Any:
    if url is None:
        url = f"sqlite:///{tmp / f'bench-{time.monotonic_ns()}.db'}"
    engine = db_engine.make_engine(url)
    db_engine.upgrade(engine)
    with engine.begin() as conn:
        for table in ("webhook_attempts", "webhook_events", "job_runs"):
            conn.exec_driver_sql(f"DELETE FROM {table}")  # noqa: S608 - fixed names
    return engine


def add_events(engine: Any, urls: list[str]) -> None:
    now = datetime.now(UTC)
    with db_engine.session_factory(engine)() as session, session.begin():
        for url in urls:
            queries.add_webhook_event(
                session,
                event_id=lifecycle.new_id("msg"),
                payment_id=None,
                event_type="payment.confirmed",
                url=url,
                body=BODY,
                now=now,
            )


def one_pass(
    engine: Any, urls: list[str], *, in_flight: int, per_endpoint: int, budget_s: float
) -> job.DeliverWebhooksResult:
    add_events(engine, urls)
    settings = WebhookSettings(
        secrets=[SecretStr("whsec_" + base64.b64encode(os.urandom(32)).decode())],
        allow_private=True,
        require_https=False,
        max_in_flight=in_flight,
        per_endpoint=per_endpoint,
        timeout_s=30.0,
    )
    with db_engine.session_factory(engine)() as session:
        return job.run(
            session,
            now=datetime.now(UTC),
            settings=settings,
            dev_chains=(),
            limit=len(urls),
            time_budget_s=budget_s,
        )


def urls_for(ports: list[int], n: int, path: str = "/hook") -> list[str]:
    return [f"http://127.0.0.1:{ports[i % len(ports)]}{path}" for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--endpoints", type=int, default=16)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--per-endpoint", type=int, default=8)
    parser.add_argument("--baseline-events", type=int, default=60)
    parser.add_argument("--hang-events", type=int, default=200)
    parser.add_argument("--hang-budget-s", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--database-url", help="PostgreSQL URL (default: a SQLite file)"
    )
    args = parser.parse_args()

    proc, ports = start_receiver(args.endpoints)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engine = fresh_database(args.database_url, Path(tmp))
            one_pass(
                engine, urls_for(ports, 50), in_flight=8, per_endpoint=8, budget_s=30
            )  # warm-up
            rates, serial = [], []
            for _ in range(args.runs):
                r = one_pass(
                    engine,
                    urls_for(ports, args.baseline_events),
                    in_flight=1,
                    per_endpoint=1,
                    budget_s=600,
                )
                serial.append(r.delivered / r.elapsed_s)
                r = one_pass(
                    engine,
                    urls_for(ports, args.events),
                    in_flight=args.in_flight,
                    per_endpoint=args.per_endpoint,
                    budget_s=600,
                )
                if r.delivered != args.events:
                    raise SystemExit(
                        f"only {r.delivered} of {args.events} delivered: {r}"
                    )
                rates.append(r.delivered / r.elapsed_s)
            hang = one_pass(
                engine,
                urls_for(ports, args.hang_events, "/hang"),
                in_flight=args.in_flight,
                per_endpoint=args.per_endpoint,
                budget_s=args.hang_budget_s,
            )
            engine.dispose()
    finally:
        proc.kill()

    concurrent_rate, serial_rate = statistics.median(rates), statistics.median(serial)
    report = {
        "answer_ms": ANSWER_S * 1000,
        "endpoints": args.endpoints,
        "in_flight": args.in_flight,
        "per_endpoint": args.per_endpoint,
        "database": "postgresql" if args.database_url else "sqlite",
        "concurrent_per_s": round(concurrent_rate, 1),
        "concurrent_runs_per_s": [round(x, 1) for x in rates],
        "one_at_a_time_per_s": round(serial_rate, 1),
        "speedup": round(concurrent_rate / serial_rate, 1),
        "hanging": {
            "events": args.hang_events,
            "budget_s": args.hang_budget_s,
            "elapsed_s": hang.elapsed_s,
            "attempts_cut": hang.retrying,
            "released_unsent": hang.released,
            "within_budget": hang.elapsed_s <= args.hang_budget_s + 0.5,
        },
    }
    print(json.dumps(report, indent=2))
    ok = (
        concurrent_rate >= 300
        and concurrent_rate / serial_rate >= 20
        and report["hanging"]["within_budget"]
    )
    print(
        "targets (>= 300/s, >= 20x, hanging pass within budget):",
        "met" if ok else "NOT met",
    )


if __name__ == "__main__":
    main()
