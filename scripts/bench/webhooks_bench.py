"""Benchmark `deliver-webhooks`: deliveries per second from one process to a local
receiver that answers every request after 50 ms, against one-at-a-time delivery timed
in the same run; then a pass against endpoints that never answer, which must still end
within its time budget.

The receiver is an asyncio HTTP/1.1 server (keep-alive) in a separate process, listening
on several ports (endpoints), so it can take the concurrency and does not share the GIL
with the sender. Each delivery is the full job: claim (lease committed), signed POST,
attempt recorded, on SQLite and on PostgreSQL (a database of its own, created on the
--database-url server and dropped at the end). It also reports the sender's CPU time
per delivery (this process, all threads; the receiver's is not counted).

    python scripts/bench/webhooks_bench.py [--events 3000] [--runs 3]
        [--database sqlite|postgresql|both] [--database-url postgresql://...]
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

import benchdb  # noqa: E402

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
) -> tuple[job.DeliverWebhooksResult, float]:
    """The pass's result and the CPU seconds this process spent in it (all threads)."""
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
        cpu0 = time.process_time()
        result = job.run(
            session,
            now=datetime.now(UTC),
            settings=settings,
            dev_chains=(),
            limit=len(urls),
            time_budget_s=budget_s,
        )
        return result, time.process_time() - cpu0


def urls_for(ports: list[int], n: int, path: str = "/hook") -> list[str]:
    return [f"http://127.0.0.1:{ports[i % len(ports)]}{path}" for i in range(n)]


def bench_database(engine: Any, ports: list[int], args: Any) -> dict[str, Any]:
    """Serial and concurrent passes, interleaved; then the hanging pass."""
    one_pass(engine, urls_for(ports, 50), in_flight=8, per_endpoint=8, budget_s=30)
    rates, serial, cpu_ms = [], [], []
    for _ in range(args.runs):
        r, _cpu = one_pass(
            engine,
            urls_for(ports, args.baseline_events),
            in_flight=1,
            per_endpoint=1,
            budget_s=600,
        )
        serial.append(r.delivered / r.elapsed_s)
        r, cpu = one_pass(
            engine,
            urls_for(ports, args.events),
            in_flight=args.in_flight,
            per_endpoint=args.per_endpoint,
            budget_s=600,
        )
        if r.delivered != args.events:
            raise SystemExit(f"only {r.delivered} of {args.events} delivered: {r}")
        rates.append(r.delivered / r.elapsed_s)
        cpu_ms.append(cpu * 1000 / r.delivered)
    hang, _cpu = one_pass(
        engine,
        urls_for(ports, args.hang_events, "/hang"),
        in_flight=args.in_flight,
        per_endpoint=args.per_endpoint,
        budget_s=args.hang_budget_s,
    )
    rate, serial_rate = statistics.median(rates), statistics.median(serial)
    return {
        "concurrent_per_s": round(rate, 1),
        "concurrent_runs_per_s": [round(x, 1) for x in rates],
        "one_at_a_time_per_s": round(serial_rate, 1),
        "speedup": round(rate / serial_rate, 1),
        "cpu_ms_per_delivery": round(statistics.median(cpu_ms), 3),
        "cpu_ms_per_delivery_runs": [round(x, 3) for x in cpu_ms],
        "hanging": {
            "events": args.hang_events,
            "budget_s": args.hang_budget_s,
            "elapsed_s": hang.elapsed_s,
            "attempts_cut": hang.retrying,
            "released_unsent": hang.released,
            "within_budget": hang.elapsed_s <= args.hang_budget_s + 0.5,
        },
    }


def met(result: dict[str, Any]) -> bool:
    return (
        result["concurrent_per_s"] >= 300
        and result["speedup"] >= 20
        and result["hanging"]["within_budget"]
    )


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
    benchdb.add_arguments(parser)
    args = parser.parse_args()
    kinds = benchdb.kinds(args)

    report: dict[str, Any] = {
        "answer_ms": ANSWER_S * 1000,
        "endpoints": args.endpoints,
        "in_flight": args.in_flight,
        "per_endpoint": args.per_endpoint,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    proc, ports = start_receiver(args.endpoints)
    try:
        for kind in kinds:
            with (
                tempfile.TemporaryDirectory() as tmp,
                benchdb.own_database(kind, args.database_url, Path(tmp)) as url,
            ):
                engine = db_engine.make_engine(url)
                report[kind] = bench_database(engine, ports, args)
                engine.dispose()
    finally:
        proc.kill()
    print(json.dumps(report, indent=2))
    ok = all(met(report[kind]) for kind in kinds)
    print(
        "targets (>= 300/s, >= 20x, hanging pass within budget):",
        "met" if ok else "NOT met",
    )


if __name__ == "__main__":
    main()
