"""Benchmark figures as JSON, so that runs on different days and machines compare.

Every `tests/bench/bench_*.py` takes `--json FILE` and writes its figures there with
`write_json`: a flat-ish dict of figures plus when and where they were measured.
`python -m tests.bench.table` builds the table in tests/bench/README.md from them.

    {"bench": "export", "date_utc": "2026-12-02T03:10:00Z",
     "machine": {"platform": "Linux-6.1-x86_64", "cpus": 2, "python": "3.11.2", ...},
     "command": "python -m tests.bench.bench_export --json out.json",
     "figures": {"parquet_packets_per_s": 812345.0, ...}}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"  # where `--json` files are kept by convention


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """Add `--json FILE` (also write the figures to FILE) to a benchmark's parser."""
    parser.add_argument("--json", metavar="FILE", type=Path, default=None,
                        help="also write the figures to FILE as JSON (with the date and the machine)")


def machine() -> dict[str, Any]:
    """Where the figures were measured: enough to tell two machines apart."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "node": platform.node(),
    }


def _plain(v: Any) -> Any:
    """Figures as JSON values (numpy scalars and paths become numbers and strings)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    item = getattr(v, "item", None)  # numpy scalar
    if callable(item):
        return _plain(item())
    return str(v)


def write_json(path: Path | str | None, figures: dict[str, Any], name: str) -> Path | None:
    """Write `figures` of benchmark `name` to `path` with the date and the machine.

    Does nothing when `path` is None (no `--json` given), so benches call it unconditionally.
    """
    if path is None:
        return None
    path = Path(path)
    doc = {
        "bench": name,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "command": "python -m tests.bench." + Path(sys.argv[0]).stem + "".join(f" {a}" for a in sys.argv[1:]),
        "figures": _plain(figures),
    }
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    print(f"figures written to {path}", file=sys.stderr)
    return path
