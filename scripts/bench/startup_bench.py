"""Benchmark start-up: the CPU time of `ctrip --help` and `ctrip scan --help` against
`python -c "import typer"`, and against a two-command Typer app printing its rich
`--help` (what any Typer CLI with rich help pays), in paired, interleaved runs.

    python scripts/bench/startup_bench.py [--runs 15]

Find what a command imports with `python -X importtime -m ctrip_cli scan --help`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import cputime

REPO = Path(__file__).resolve().parents[2]
TYPER_APP = """
import typer
app = typer.Typer(rich_markup_mode="rich", no_args_is_help=True)
@app.command()
def one(x: int = 1) -> None:
    "One."
@app.command()
def two(x: int = 1) -> None:
    "Two."
app()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    commands = {
        "import_typer": [py, "-c", "import typer"],
        "typer_app_help": [py, "-c", TYPER_APP, "--help"],
        "ctrip_help": [py, "-m", "ctrip_cli", "--help"],
        "ctrip_scan_help": [py, "-m", "ctrip_cli", "scan", "--help"],
    }
    env = cputime.child_env(PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory() as tmp:  # no .env or chains.yaml picked up
        times = cputime.interleaved(commands, runs=args.runs, env=env, cwd=tmp)
    report = {
        "runs": args.runs,
        "load_average_1m": round(os.getloadavg()[0], 2),
        **cputime.summary(times, "import_typer"),
    }
    print(json.dumps(report, indent=2))
    ratios = report["over_import_typer"]
    ok = ratios["ctrip_help"] <= 1.5 and ratios["ctrip_scan_help"] <= 2.0
    print("targets (--help <= 1.5x, scan --help <= 2x import typer):", end=" ")
    print("met" if ok else "NOT met")


if __name__ == "__main__":
    main()
