"""CPU time of short commands: paired, interleaved runs, medians and ratios.

Each round runs every command once, in order, so a change in machine load affects all
of them alike; the CPU time (user + system) of each child is read from rusage.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment for the measured commands, plus `extra`.

    Without PYTHONDONTWRITEBYTECODE: an installed ctrip has its bytecode cached, so the
    warm-up round writes the .pyc files the measured rounds then read (with it set,
    every run would compile ctrip's modules again).
    """
    env = dict(os.environ, **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def cpu_s(argv: Sequence[str], env: Mapping[str, str], cwd: str | None = None) -> float:
    """The CPU seconds one run of `argv` took; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        list(argv), env=dict(env), cwd=cwd, capture_output=True, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr[-500:]!r}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def interleaved(
    commands: Mapping[str, Sequence[str]],
    *,
    runs: int,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> dict[str, list[float]]:
    """CPU seconds of each command over `runs` rounds (one warm-up round first)."""
    env = os.environ if env is None else env
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(runs + 1):
        for name, argv in commands.items():
            spent = cpu_s(argv, env, cwd)
            if round_:  # round 0 warms the page cache and .pyc files
                times[name].append(spent)
    return times


def summary(times: dict[str, list[float]], baseline: str) -> dict[str, Any]:
    """Median milliseconds per command, and each median over the baseline's."""
    medians = {name: statistics.median(v) for name, v in times.items()}
    return {
        "median_cpu_ms": {k: round(v * 1000, 1) for k, v in medians.items()},
        "min_cpu_ms": {k: round(min(v) * 1000, 1) for k, v in times.items()},
        f"over_{baseline}": {
            k: round(v / medians[baseline], 2)
            for k, v in medians.items()
            if k != baseline
        },
        "paired_ratio_median": {
            k: round(
                statistics.median(
                    a / b for a, b in zip(v, times[baseline], strict=True)
                ),
                2,
            )
            for k, v in times.items()
            if k != baseline
        },
    }
