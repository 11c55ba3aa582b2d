"""The latest benchmark figures as a markdown table in tests/bench/README.md.

    python -m tests.bench.bench_export --json tests/bench/results/export.json
    python -m tests.bench.table            # rewrites the table in tests/bench/README.md
    python -m tests.bench.table --print    # or prints it

Reads every `*.json` written by a bench's `--json` (tests/bench/results/ by default; the
newest file per bench wins) and writes one row per bench: its figures, the date and the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tests.bench.report import RESULTS

README = Path(__file__).resolve().parent / "README.md"
BEGIN = "<!-- figures: built by python -m tests.bench.table -->"
END = "<!-- end of figures -->"


def _flat(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in figures.items():
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k}.")
        elif not isinstance(v, list):
            out.append((prefix + k, v))
    return out


def _value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        if v == 0 or abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.3g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v).replace("|", "\\|")


def latest(folder: Path) -> list[dict[str, Any]]:
    """The newest result per bench in `folder`, by bench name."""
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or "bench" not in doc or "figures" not in doc:
            continue
        old = docs.get(doc["bench"])
        if old is None or doc.get("date_utc", "") >= old.get("date_utc", ""):
            docs[doc["bench"]] = doc
    return [docs[k] for k in sorted(docs)]


def table(docs: list[dict[str, Any]]) -> str:
    """One short markdown table: a row per bench with its figures, the date and the machine."""
    lines = ["| bench | figures | date (UTC) | machine |", "|---|---|---|---|"]
    for doc in docs:
        m = doc.get("machine", {})
        where = f"{m.get('cpu', '?')} x{m.get('cpus', '?')}, {m.get('implementation', '')} {m.get('python', '')}"
        figures = "; ".join(f"{k} {_value(v)}" for k, v in _flat(doc["figures"]))
        lines.append(f"| {doc['bench']} | {figures} | {doc.get('date_utc', '?')[:16]} | {where.strip()} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--results", type=Path, default=RESULTS, help="folder of --json files")
    ap.add_argument("--readme", type=Path, default=README)
    ap.add_argument("--print", action="store_true", help="print the table instead of writing the README")
    args = ap.parse_args(argv)
    docs = latest(args.results)
    if not docs:
        print(f"farside: error: no benchmark JSON files in {args.results}", file=sys.stderr)
        return 2
    text = table(docs)
    if args.print:
        sys.stdout.write(text)
        return 0
    old = args.readme.read_text() if args.readme.exists() else ""
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + block + "\n"
    args.readme.write_text(new)
    print(f"{args.readme}: {sum(len(_flat(d['figures'])) for d in docs)} figures from {len(docs)} benches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
