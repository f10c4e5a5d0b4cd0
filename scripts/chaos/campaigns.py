"""The campaigns. Each one builds its own world, injects one kind of fault into the real
CLI, lets the system settle and checks the invariants against the chain.

    crash        SIGKILL a random pass at a random point, then rerun it
    concurrency  8 concurrent runs of every pass; lock-busy runs exit 0 as skipped
    reorg        random reorgs of depth 1..confirmations+2 during scanning
    rpc          timeouts, resets, 429, 5xx, malformed JSON, batch errors, lag, chain id
    database     pg_terminate_backend in the middle of a pass
    secrets      known mnemonic, webhook secret and RPC API key never appear anywhere
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from scripts.chaos import invariants, secrets
from scripts.chaos.rpc_proxy import FAULTS, SKEW
from scripts.chaos.settle import settle
from scripts.chaos.world import PASSES, RPC_API_KEY, CliRun, World

SIZES: dict[str, dict[str, int]] = {
    "small": {
        "crash": 4,
        "concurrency": 1,
        "reorg": 2,
        "rpc": 1,
        "database": 2,
        "secrets": 0,
    },
    "full": {
        "crash": 200,
        "concurrency": 6,
        "reorg": 30,
        "rpc": 4,
        "database": 12,
        "secrets": 2,
    },
}


@dataclass
class CampaignResult:
    name: str
    trials: int = 0
    faults: int = 0
    violations: list[str] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    cli_runs: int = 0
    cli_seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.name,
            "trials": self.trials,
            "faults_injected": self.faults,
            "invariant_violations": len(self.violations),
            "violations": self.violations[:50],
            "notes": dict(self.notes),
            "seconds": round(self.seconds, 1),
            "cli_runs": self.cli_runs,
            "cli_seconds": round(self.cli_seconds, 1),
        }


def _clean_failure(run: CliRun) -> str | None:
    """A pass that failed must say why in one message, without a traceback."""
    if "Traceback" in run.err or "Traceback" in run.out:
        return f"`ctrip {' '.join(run.args)}` printed a traceback: {run.err.strip()[-400:]}"
    if run.rc == 1 and not run.err.strip():
        return f"`ctrip {' '.join(run.args)}` exited 1 without a message"
    if run.rc not in (0, 1, None):
        return f"`ctrip {' '.join(run.args)}` exited {run.rc}: {run.err.strip()[-300:]}"
    return None


def _pass_args(name: str) -> list[str]:
    if name == "deliver-webhooks":
        return ["deliver-webhooks", "--json", "--time-budget", "20s"]
    return [name, "--chain", "local", "--json"]


def _new_work(world: World, n: int) -> None:
    late = world.create_payments(1, expires_in="2s")
    for payment in world.create_payments(n):
        world.fund(payment)
    time.sleep(2.5)  # past the late payment's deadline, on the chain's clock too
    world.mine(1)
    for payment in late:
        world.fund_late(payment)
    world.mine(world.rng.randint(0, world.confirmations + 1))


def _finish(world: World, result: CampaignResult) -> None:
    result.violations += settle(world)
    if world.repeat():  # second payments to settled addresses get sweeps of their own
        result.violations += settle(world)
    result.violations += invariants.check(world)
    result.violations += secrets.check(world)


# -- crash anywhere --


def crash(world: World, trials: int) -> CampaignResult:
    result = CampaignResult("crash")
    world.proxy.latency_s = 0.05  # passes take long enough to be killed mid-way
    world.receiver.fail_rate = 0.2
    _new_work(world, 4)
    for trial in range(trials):
        if trial and trial % 25 == 0:
            _new_work(world, 3)
        if trial % 5 == 4:
            world.mine(world.confirmations)
        name = world.rng.choice(PASSES)
        if name == "deliver-webhooks":
            world.fast_forward()
        args = _pass_args(name)
        run = world.kill_after(
            # From start-up (imports) to late in the pass: passes got faster, so the
            # window starts early enough that most trials kill a pass mid-way.
            world.spawn(*args),
            world.rng.uniform(0.2, 2.0),
            tuple(args),
        )
        result.trials += 1
        if run.rc is None:
            result.faults += 1
            result.notes[f"killed {name}"] += 1
        rerun = world.cli_inproc(*args)
        problem = _clean_failure(run) or _clean_failure(rerun)
        if problem:
            result.violations.append(problem)
        if rerun.rc != 0:
            result.violations.append(
                f"rerun of {name} after SIGKILL exited {rerun.rc}: "
                f"{rerun.err.strip()[-300:]}"
            )
    world.proxy.latency_s = 0.0
    _finish(world, result)
    return result


# -- concurrency --


def concurrency(world: World, rounds: int) -> CampaignResult:
    result = CampaignResult("concurrency")
    world.proxy.latency_s = 0.01
    for _ in range(rounds):
        _new_work(world, 3)
        world.mine(world.confirmations)
        for name in PASSES:
            if name == "deliver-webhooks":
                world.fast_forward()
            _together(world, result, [name] * 8)
        _together(world, result, [n for n in PASSES for _ in range(2)])
    world.proxy.latency_s = 0.0
    _finish(world, result)
    return result


def _together(world: World, result: CampaignResult, names: list[str]) -> None:
    procs = [(world.spawn(*_pass_args(n)), n) for n in names]
    for proc, name in procs:
        run = world.finish(proc, _pass_args(name), timeout_s=180)
        result.trials += 1
        result.faults += 1  # every run overlaps the others
        body = run.json() or {}
        if run.rc != 0:
            result.violations.append(
                f"concurrent {name} exited {run.rc}: {run.err.strip()[-300:]}"
            )
        elif body.get("skipped") not in (None, "lock held"):
            result.violations.append(
                f"concurrent {name} skipped for {body.get('skipped')!r}"
            )
        elif body.get("skipped") == "lock held":
            result.notes[f"{name} lock held"] += 1
        else:
            result.notes[f"{name} ran"] += 1


# -- reorgs --


def reorg(world: World, rounds: int) -> CampaignResult:
    result = CampaignResult("reorg")
    for _ in range(rounds):
        _new_work(world, 2)
        world.cli_inproc("scan", "--chain", "local", "--json")
        world.cli_inproc("confirm", "--chain", "local", "--json")
        depth = world.rng.randint(1, world.confirmations + 2)
        scan = world.spawn(*_pass_args("scan"))
        time.sleep(world.rng.uniform(0.0, 1.5))
        dropped = _reorg(world, depth)
        run = world.finish(scan, _pass_args("scan"), timeout_s=180)
        result.trials += 1
        result.faults += 1
        result.notes[f"depth {depth}"] += 1
        result.notes["transactions dropped"] += dropped
        if problem := _clean_failure(run):
            result.violations.append(problem)
        for name in ("scan", "confirm", "sweep"):
            after = world.cli_inproc(*_pass_args(name))
            if after.rc != 0:
                result.violations.append(
                    f"{name} after a reorg exited {after.rc}: "
                    f"{after.err.strip()[-300:]}"
                )
        result.violations += invariants.confirmed_are_canonical(world)
    _finish(world, result)
    return result


def _reorg(world: World, depth: int) -> int:
    """Replace the last `depth` blocks. Transactions at least `confirmations` deep are
    re-included (a deeper loss is outside what confirmations promise); shallower ones
    are dropped with probability 1/2, per sender so nonces stay contiguous."""
    anvil = world.anvil
    head = anvil.block_number()
    pairs: list[tuple[str, int]] = []
    dropped_senders: set[str] = set()
    dropped = 0
    for offset, number in enumerate(range(head - depth + 1, head + 1)):
        block = anvil.get_block(number, full=True) or {"transactions": []}
        for tx in block["transactions"]:
            deep = head - number + 1 >= world.confirmations
            sender = tx["from"].lower()
            if not deep and (sender in dropped_senders or world.rng.random() < 0.5):
                dropped_senders.add(sender)
                dropped += 1
                continue
            raw = anvil.rpc("eth_getRawTransactionByHash", tx["hash"])
            pairs.append((raw, world.rng.randint(offset, depth - 1)))
    pairs.sort(key=lambda p: p[1])
    anvil.reorg(depth, pairs)
    return dropped


# -- RPC faults --


def rpc(world: World, per_fault: int) -> CampaignResult:
    result = CampaignResult("rpc")
    for fault in (*FAULTS, SKEW):
        for variant in _variants(fault)[: max(1, per_fault)]:
            _new_work(world, 1)
            world.mine(1)
            _rpc_trial(world, result, fault, variant)
    _finish(world, result)
    return result


def _variants(fault: str) -> list[str]:
    if fault == "hang":
        return ["first endpoint, once", "first endpoint, once"]
    if fault == "lag":
        # mixed: the head may come from the healthy node and the logs from the lagging
        # one after a failover; the cursor must still not pass what was read.
        return ["mixed", "both endpoints", "mixed", "first endpoint"]
    return ["first endpoint", "both, transient", "both endpoints", "first endpoint"]


def _rpc_trial(world: World, result: CampaignResult, fault: str, variant: str) -> None:
    head_before = world.anvil.block_number()
    for proxy in (world.proxy, world.proxy2):
        proxy.clear()
    targets = (
        [world.proxy] if variant.startswith("first") else [world.proxy, world.proxy2]
    )
    if variant == "mixed":
        world.proxy.fault, world.proxy.probability = "5xx", 0.3
        targets = [world.proxy2]
    for proxy in targets:
        proxy.fault = fault
        proxy.hang_s = 15.0
        proxy.lag_blocks = world.rng.randint(1, 6)
        proxy.fault_budget = (
            1 if "once" in variant else (2 if "transient" in variant else None)
        )
    name = world.rng.choice(["scan", "scan", "confirm", "sweep"])
    before = sum(p.injected[fault] for p in targets)
    run = world.cli(*_pass_args(name))
    injected = sum(p.injected[fault] for p in targets) - before
    result.trials += 1
    result.faults += injected
    result.notes[f"{fault}: exit {run.rc}"] += 1
    if problem := _clean_failure(run):
        result.violations.append(problem)
    if fault == "chain_id" and variant == "both endpoints" and run.rc == 0 and injected:
        result.violations.append(
            f"{name} ran against a node serving the wrong chain id"
        )
    result.violations += _cursor_ok(world, head_before)
    for proxy in (world.proxy, world.proxy2):
        proxy.clear()


def _cursor_ok(world: World, head_before: int) -> list[str]:
    rows = world.query(
        "SELECT block_number, block_hash FROM scan_cursors WHERE chain = 'local'"
    )
    if not rows:
        return []
    number, block_hash = rows[0]
    block = world.anvil.get_block(int(number))
    if int(number) > world.anvil.block_number():
        return [f"scan cursor #{number} is past the head"]
    if block is None or block["hash"].lower() != str(block_hash).lower():
        return [f"scan cursor #{number} names a block that is not canonical"]
    return []


# -- database faults --


def database(world: World, trials: int) -> CampaignResult:
    result = CampaignResult("database")
    if not world.pg_name:
        result.notes["skipped: needs PostgreSQL"] += 1
        return result
    for trial in range(trials):
        _new_work(world, 2)
        world.mine(world.confirmations)
        # The sweep first: a kill between signing and broadcasting matters most.
        name = ("sweep", "scan", "deliver-webhooks", "confirm")[trial % len(PASSES)]
        if name == "deliver-webhooks":
            world.fast_forward()
        where = "receiver" if name == "deliver-webhooks" else "rpc"
        killed = _arm_kill(world, where, world.rng.randint(1, 6))
        run = world.cli(*_pass_args(name))
        world.proxy.on_request = world.proxy2.on_request = world.receiver.on_request = (
            None
        )
        result.trials += 1
        result.faults += int(killed[0] > 0)
        result.notes["backends terminated"] += killed[0]
        result.notes[
            f"{name}: exit {run.rc}, {'killed' if killed[0] else 'no kill'}"
        ] += 1
        if problem := _clean_failure(run):
            result.violations.append(problem)
        if run.rc == 1 and "Database" not in run.err:
            result.violations.append(
                f"{name} exited 1 without naming the database: {run.err.strip()[-300:]}"
            )
        rerun = world.cli_inproc(*_pass_args(name))
        if rerun.rc != 0:
            result.violations.append(f"rerun of {name} exited {rerun.rc}")
    _finish(world, result)
    return result


def _arm_kill(world: World, where: str, nth: int) -> list[int]:
    """On the nth request to the RPC proxies (or the webhook receiver), terminate every
    backend of the campaign database: the pass is mid-way, between its checkpoints."""
    killed, seen = [0], [0]
    lock = threading.Lock()

    def fire(_methods: list[str] | None = None) -> None:
        with lock:
            seen[0] += 1
            if killed[0] or seen[0] < nth:
                return
            killed[0] = _terminate(world)

    if where == "rpc":
        world.proxy.on_request = world.proxy2.on_request = fire
    else:
        world.receiver.on_request = fire
    return killed


def _terminate(world: World) -> int:
    admin = sa.create_engine(world.admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(
                list(
                    conn.execute(
                        sa.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = :db AND pid <> pg_backend_pid()"
                        ),
                        {"db": world.pg_name},
                    )
                )
            )
    finally:
        admin.dispose()


# -- secrets (checked by every campaign's _finish, plus a verbose run of every pass) --


def secrets_campaign(world: World, size: int) -> CampaignResult:
    result = CampaignResult("secrets")
    _new_work(world, 3)
    world.mine(world.confirmations)
    modes = (None, "reset", "chain_id", "5xx", "batch_error", "lag")
    for i, fault in enumerate(modes[: 2 + 2 * size]):
        world.proxy.fault = world.proxy2.fault = fault
        for name in PASSES:
            log_format = ["--log-format", "json"] if i % 2 else []
            world.cli(*log_format, *_pass_args(name), verbose=True)
        world.proxy.clear()
        world.proxy2.clear()
    world.cli("--verbose", "status", "--check")
    world.cli(
        "payments", "create", "--chain", "local", "--asset", "USDC", "--amount", "3"
    )
    world.cli_inproc("payments", "list", "--json")
    world.cli_inproc("webhooks", "list", "--json")
    _finish(world, result)
    # Not vacuous: the API key reached the node in the URL, the secret signed webhooks.
    if not any(RPC_API_KEY in path for path in world.proxy.seen_paths):
        result.violations.append("the RPC API key never reached the proxy")
    if not world.receiver.requests:
        result.violations.append(
            "no webhook was delivered, so the secret was never used"
        )
    result.trials, result.faults = secrets.scanned(world)
    return result


CAMPAIGNS: dict[str, Callable[[World, int], CampaignResult]] = {
    "crash": crash,
    "concurrency": concurrency,
    "reorg": reorg,
    "rpc": rpc,
    "database": database,
    "secrets": secrets_campaign,
}


def run_campaign(
    name: str, size: str, workdir: Path, *, seed: int, database_kind: str
) -> CampaignResult:
    """Build a fresh world, run one campaign in it, tear it down."""
    started = time.monotonic()
    world = World.start(
        workdir / name,
        seed=seed,
        database=database_kind,
        confirmations=3 if name == "reorg" else 2,
    )
    try:
        result = CAMPAIGNS[name](world, SIZES[size].get(name, 1))
        result.cli_runs = len(world.runs)
        result.cli_seconds = sum(r.seconds for r in world.runs)
    finally:
        world.stop()
    result.seconds = time.monotonic() - started
    return result
