"""Flash benchmark: the whole firmware to a virtual board, cold and incremental.

    python -m tests.bench.bench_flash [--runs N]

Prints, per case: wall time split into build / attach (get the raw REPL) / stage
(upload, verify, switch) / boot (reset until the rover's BOOT event), the file bytes
uploaded and the bytes written on the wire (code, base64, protocol).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from hil.board import start_board
from hil.flash import FlashOptions, build_image, flash
from tests.bench.report import add_json_option, write_json

ROOT = Path(__file__).resolve().parents[2]


def _src(tmp: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", "HEAD", "firmware_py"], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode == 0:
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
    else:
        shutil.copytree(ROOT / "firmware_py", tmp / "firmware_py")
    return tmp / "firmware_py"


def _set_patch(src: Path, patch: int) -> None:
    path = src / "version.py"
    path.write_text(re.sub(r"PATCH = const\(\d+\)", f"PATCH = const({patch})", path.read_text()))


class Phases:
    """Progress callback that timestamps the flash's phases."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.marks: dict[str, float] = {}

    def __call__(self, phase: str, done: int, total: int, path: str) -> None:
        self.marks.setdefault(phase, time.monotonic() - self.t0)

    def split(self, total: float) -> dict[str, float]:
        m = self.marks
        connect = m.get("connect", 0.0)
        stage = m.get("stage", m.get("reset", total))
        reset = m.get("reset", total)
        return {
            "build": connect,
            "attach": stage - connect,
            "stage": reset - stage,
            "boot": total - reset,
        }


def one(board_port: str, src: Path) -> tuple[float, dict[str, float], int, int, int]:
    phases = Phases()
    report = flash(FlashOptions(board="sim", port=board_port, source=src), progress=phases)
    total = time.monotonic() - phases.t0
    assert report.boot is not None and report.boot.version == report.version
    uploaded = sum(f.size for f in report.plan.files if f.action == "upload")
    return total, phases.split(total), uploaded, report.payload_bytes, report.wire_bytes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    add_json_option(parser)
    args = parser.parse_args()
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="farside-bench-") as tmp_s:
        tmp = Path(tmp_s)
        os.environ["FARSIDE_RUNTIME_DIR"] = str(tmp / "rt")
        src = _src(tmp)
        # Compile time with an empty cache, then with the cache.
        os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")
        t = time.monotonic()
        image = build_image("sim", src)
        cold_build = time.monotonic() - t
        t = time.monotonic()
        build_image("sim", src)
        warm_build = time.monotonic() - t
        print(
            f"image: {len(image.files)} files, {image.size} bytes (.mpy + board + dictionary + keys)"
        )
        print(f"build: {cold_build:.2f} s with an empty mpy-cross cache, {warm_build:.3f} s cached")
        figures.update(image_files=len(image.files), image_octets=image.size, build_cold_s=cold_build,
                       build_cached_s=warm_build, runs=args.runs)
        print()
        rows: dict[str, list[tuple[float, dict[str, float], int, int, int]]] = {
            "cold": [],
            "incremental": [],
            "unchanged": [],
        }
        for run in range(args.runs):
            board = start_board(board="sim", flash_dir=tmp / f"flash{run}")
            try:
                _set_patch(src, 1)
                rows["cold"].append(one(board.port, src))
                _set_patch(src, 2)
                rows["incremental"].append(one(board.port, src))
                rows["unchanged"].append(one(board.port, src))
            finally:
                board.stop()
        print(
            f"{'case':12} {'total s':>8} {'build':>6} {'attach':>7} {'stage':>6} {'boot':>6} {'files B':>9} {'payload B':>10} {'wire B':>8}"
        )
        for case, results in rows.items():
            total = statistics.median(r[0] for r in results)
            split = {
                k: statistics.median(r[1][k] for r in results)
                for k in ("build", "attach", "stage", "boot")
            }
            files, payload, wire = results[-1][2], results[-1][3], results[-1][4]
            figures[f"{case}_total_s"] = total
            figures.update({f"{case}_{k}_s": v for k, v in split.items()})
            figures.update({f"{case}_files_octets": files, f"{case}_payload_octets": payload, f"{case}_wire_octets": wire})
            print(
                f"{case:12} {total:8.2f} {split['build']:6.2f} {split['attach']:7.2f} {split['stage']:6.2f} "
                f"{split['boot']:6.2f} {files:9d} {payload:10d} {wire:8d}"
            )
        print(
            f"\n(median of {args.runs} runs; 'cold' = empty board, 'incremental' = version.py changed, "
            "'unchanged' = nothing to move; boot includes main.py's escape window, 200 ms when the line is quiet)"
        )
    write_json(args.json, figures, "flash")


if __name__ == "__main__":
    main()
