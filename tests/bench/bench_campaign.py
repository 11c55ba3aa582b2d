"""Fault campaign throughput: seeds per minute at -n 1 and -n 2 (figures, not a test).

    python -m tests.bench.bench_campaign [--seeds 12] [--workers 1,2] [--json FILE]

Runs tests/hil/test_campaign.py's wheel-failure-and-outage campaign (virtual target, one
12 m drive with a jammed wheel and a relay outage per seed) as a whole pytest process per
worker count, and checks that every worker count gives the same merged table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.report import add_json_option, write_json

ROOT = Path(__file__).resolve().parents[2]
TEST = "tests/hil/test_campaign.py::test_wheel_failure_and_outage_campaign"


def campaign(seeds: int, workers: int, base: Path) -> tuple[float, float, list[dict[str, Any]]]:
    """(wall s, CPU s of pytest and its workers, merged table) of one campaign run."""
    t0 = time.perf_counter()
    before = os.times()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", TEST, "--farside-seed", f"1..{seeds}", "-q", "-p", "no:cacheprovider",
         "--basetemp", str(base), "-n", str(workers)],
        cwd=ROOT, capture_output=True, text=True,
    )
    wall = time.perf_counter() - t0
    after = os.times()
    if proc.returncode:
        sys.exit(f"bench_campaign: pytest -n {workers} failed:\n{proc.stdout[-2000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    table: list[dict[str, Any]] = json.loads((base / "farside" / "campaign.json").read_text())
    return wall, cpu, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--workers", default="1,2", help="worker counts to run (pytest-xdist -n)")
    add_json_option(ap)
    args = ap.parse_args()
    figures: dict[str, Any] = {"seeds": args.seeds}
    tables = []
    print(f"fault campaign, {args.seeds} seeds, whole pytest process (collection and worker start included)")
    with tempfile.TemporaryDirectory(prefix="farside-bench-campaign-") as tmp:
        for n in (int(w) for w in args.workers.split(",")):
            wall, cpu, table = campaign(args.seeds, n, Path(tmp) / f"n{n}")
            tables.append(table)
            rate = args.seeds / wall * 60.0
            figures.update({f"n{n}_seeds_per_min": rate, f"n{n}_wall_s": wall, f"n{n}_cpu_s": cpu})
            print(f"  -n {n}: {rate:6.1f} seeds/min ({wall:.1f} s wall, {cpu:.1f} s CPU)")
    same = all(t == tables[0] for t in tables)
    figures["tables_equal"] = same
    print(f"  merged tables equal across worker counts: {same}")
    write_json(args.json, figures, "campaign")


if __name__ == "__main__":
    main()
