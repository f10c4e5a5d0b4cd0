"""Run the chaos campaigns and print their figures.

    python -m scripts.chaos --size small            # CI size, about a minute per campaign
    python -m scripts.chaos --size full --report chaos-report.json
    python -m scripts.chaos --campaigns crash,reorg --seed 7

Exit status 0 when no invariant was violated, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from scripts.chaos.campaigns import CAMPAIGNS, SIZES, CampaignResult, run_campaign


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument(
        "--campaigns", default=",".join(CAMPAIGNS), help="comma-separated"
    )
    parser.add_argument(
        "--database", choices=["postgresql", "sqlite"], default="postgresql"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.campaigns.split(",") if n.strip()]
    unknown = [n for n in names if n not in CAMPAIGNS]
    if unknown:
        parser.error(f"unknown campaign(s) {unknown}; known: {', '.join(CAMPAIGNS)}")
    results = run_all(names, args.size, seed=args.seed, database=args.database)
    report = make_report(
        results, size=args.size, seed=args.seed, database=args.database
    )
    Console().print(table(results))
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["invariant_violations"] == 0 else 1


def run_all(
    names: list[str], size: str, *, seed: int, database: str
) -> list[CampaignResult]:
    with tempfile.TemporaryDirectory(prefix="ctrip-chaos-") as tmp:
        results = []
        for i, name in enumerate(names):
            result = run_campaign(
                name, size, Path(tmp), seed=seed + i, database_kind=database
            )
            print(
                f"{name}: {result.trials} trials, {result.faults} faults, "
                f"{len(result.violations)} violations, {result.seconds:.0f}s",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
        return results


def make_report(
    results: list[CampaignResult], *, size: str, seed: int, database: str
) -> dict[str, Any]:
    return {
        "size": size,
        "seed": seed,
        "database": database,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "trials": sum(r.trials for r in results),
        "faults_injected": sum(r.faults for r in results),
        "invariant_violations": sum(len(r.violations) for r in results),
        "campaigns": [r.as_json() for r in results],
    }


def table(results: list[CampaignResult]) -> Table:
    out = Table(
        "campaign",
        "trials",
        "faults injected",
        "invariant violations",
        "seconds",
        title="ctrip chaos campaigns",
    )
    for r in results:
        out.add_row(
            r.name,
            str(r.trials),
            str(r.faults),
            f"[{'green' if not r.violations else 'red'}]{len(r.violations)}[/]",
            f"{r.seconds:.0f}",
        )
    for r in results:
        for v in r.violations[:10]:
            out.add_row(r.name, "", "", v, "")
    return out


if __name__ == "__main__":
    sys.exit(main())
