"""Benchmark of the rover's link security (figures, not a test): verify (and decrypt) of a
64-octet TC frame per suite, the heap each verify allocates once warm, and the cost of a key
set-up (GHASH tables), on the MicroPython unix port (the Pico's heap limit), on CPython (the
rover as the virtual-time runs use it), and on the emulated RP2040 (the stock MicroPython
rp2 firmware at 125 MHz, timed in chip time: what a real Pico takes).

    python -m tests.bench.bench_sdls [--n 200] [--no-pico] [--json FILE]

Goal on the Pico: well under 20 ms per frame (a 64-octet frame takes 4.1 s to arrive at
125 bit/s); heap per verify after warm-up: 0 B.
Prints a table, then one JSON line with every figure (null: not measured, see the notes).
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

ROOT = Path(__file__).resolve().parents[2]
FRAME_OCTETS = 64
PICO_HEAPSIZE = "192K"
GOAL_PICO_US = 20000

# Runs unchanged under MicroPython (unix port, the chip's raw REPL) and CPython. Per suite:
# frame octets, median and best verify µs (the frame copied back in between, untimed),
# octets allocated per verify once warm (gc off while counted; CPython: -1), key set-up µs,
# and whether every verify passed.
SCRIPT = """
import gc
try:
    from time import ticks_diff, ticks_us
except ImportError:
    from firmware_py.compat import ticks_diff, ticks_us
from firmware_py import gcm
from firmware_py.sdls import Security
KEY = bytes(range(32))
N = {n}
print("native", int(gcm.NATIVE))
for suite, name, over in ((3, "aes-gcm", 37), (2, "gmac", 37), (1, "hmac-sha256", 29)):
    t0 = ticks_us()
    sec = Security({{1: (suite, KEY, 1)}})
    setup = ticks_diff(ticks_us(), t0)
    buf = bytearray({octets})
    n = sec.build_frame(buf, 0, 0, 171, 1, 0, 1, 5, bytes({octets} - over))
    frame = bytes(buf[0:n])
    work = bytearray(n)
    ts = [0] * N
    ok = 0
    for i in range(N + 3):
        for k in range(n):
            work[k] = frame[k]
        t0 = ticks_us()
        r = sec.verify(work, n)
        dt = ticks_diff(ticks_us(), t0)
        if i >= 3:
            ts[i - 3] = dt
            ok += r == 0
    heap = -1
    if hasattr(gc, "mem_alloc"):
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        for i in range(N):
            for k in range(n):
                work[k] = frame[k]
            sec.verify(work, n)
        heap = (gc.mem_alloc() - a) // N
        gc.enable()
    ts.sort()
    print(name, n, ts[N // 2], ts[0], heap, setup, int(ok == N))
"""


def parse(out: str) -> dict[str, Any]:
    fig: dict[str, Any] = {}
    for line in out.splitlines():
        w = line.split()
        if len(w) == 2 and w[0] == "native":
            fig["viper_ghash"] = w[1] == "1"
        elif len(w) == 7:
            fig[w[0]] = {
                "frame_octets": int(w[1]),
                "verify_us_median": int(w[2]),
                "verify_us_best": int(w[3]),
                "heap_per_verify_b": None if int(w[4]) < 0 else int(w[4]),
                "key_setup_us": int(w[5]),
                "all_verified": w[6] == "1",
            }
    return fig


def unix_port(n: int) -> dict[str, Any]:
    mp = Path(sys.executable).parent / "micropython"
    if not mp.exists():
        return {"note": "no micropython unix port here"}
    prelude = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
    proc = subprocess.run(
        [str(mp), "-X", f"heapsize={PICO_HEAPSIZE}", "-c", prelude + SCRIPT.format(n=n, octets=FRAME_OCTETS)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    if proc.returncode:
        return {"note": "unix port failed: " + (proc.stdout + proc.stderr).strip().splitlines()[-1]}
    return parse(proc.stdout)


def cpython(n: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(SCRIPT.format(n=n, octets=FRAME_OCTETS), {})  # noqa: S102 - our own script
    return parse(buf.getvalue())


def pico(n: int) -> dict[str, Any]:
    """The same script over the raw REPL of an emulated Pico whose flash holds the firmware
    as `farside flash` installs it (.mpy files)."""
    from hil.errors import FarsideError
    from tests.bench.bench_pico import BOARD, BenchError, ChipRepl, preflight, say

    try:
        firmware = preflight(None)
        with tempfile.TemporaryDirectory(prefix="farside-bench-sdls-") as tmp_s:
            tmp = Path(tmp_s)
            os.environ["FARSIDE_RUNTIME_DIR"] = str(tmp / "runtime")
            from hil.board import start_board
            from hil.flash import FlashOptions, flash
            from hil.mission.chip import ChipTarget

            folder = tmp / "board"
            say("farside flash onto an emulated Pico")
            board = start_board(board=BOARD, flash_dir=folder, emulated=True, firmware=str(firmware), pace="realtime")
            try:
                keys = ROOT / "hil" / "gs" / "dev_keys.json"
                try:
                    flash(FlashOptions(board=BOARD, port=board.port, source=ROOT / "firmware_py", keys=keys))
                except TypeError:
                    flash(FlashOptions(board=BOARD, port=board.port, source=ROOT / "firmware_py"))
            finally:
                board.stop()
            say("the verify script on the chip (chip time)")
            target = ChipTarget(folder / "flash.img", "none", 1, tmp / "run", board=BOARD, firmware=firmware)
            try:
                repl = ChipRepl(target.pico)
                repl.stop_boot()
                c0, w0 = target.pico.now, time.monotonic()
                out = repl.exec(SCRIPT.format(n=n, octets=FRAME_OCTETS), chip_s=900.0)
                fig = parse(out)
                fig["chip_s_per_wall_s"] = round((target.pico.now - c0) / (time.monotonic() - w0), 3)
                return fig
            finally:
                target.close()
    except (BenchError, FarsideError, OSError) as exc:
        return {"note": "not measurable: " + (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}


def table(results: dict[str, dict[str, Any]]) -> None:
    print(f"{'where':<10} {'suite':<12} {'octets':>6} {'verify µs':>10} {'best µs':>8} "
          f"{'heap B/verify':>13} {'key set-up µs':>13}")
    for where, fig in results.items():
        if "note" in fig:
            print(f"{where:<10} {fig['note']}")
            continue
        for suite in ("aes-gcm", "gmac", "hmac-sha256"):
            f = fig.get(suite)
            if not f:
                continue
            heap = "-" if f["heap_per_verify_b"] is None else str(f["heap_per_verify_b"])
            print(f"{where:<10} {suite:<12} {f['frame_octets']:>6} {f['verify_us_median']:>10} "
                  f"{f['verify_us_best']:>8} {heap:>13} {f['key_setup_us']:>13}"
                  + ("" if f["all_verified"] else "  (a verify failed!)"))
    p = results.get("pico", {}).get("aes-gcm")
    if p:
        verdict = "met" if p["verify_us_median"] < GOAL_PICO_US else "NOT met"
        print(f"goal on the Pico: AES-256-GCM verify + decrypt under {GOAL_PICO_US // 1000} ms: {verdict}")
    print("viper GHASH: unix port", results.get("unix", {}).get("viper_ghash"),
          "| pico", results.get("pico", {}).get("viper_ghash"))


def main(argv: list[str] | None = None) -> None:
    from tests.bench.report import add_json_option, write_json

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="verifies per figure")
    ap.add_argument("--no-pico", action="store_true", help="skip the emulated Pico")
    add_json_option(ap)
    args = ap.parse_args(argv)
    if args.n < 1:
        sys.exit("farside: error: --n must be at least 1")
    results = {"unix": unix_port(args.n), "cpython": cpython(args.n)}
    results["pico"] = {"note": "skipped (--no-pico)"} if args.no_pico else pico(min(args.n, 50))
    table(results)
    line = json.dumps(results, sort_keys=True)
    print(line)
    write_json(args.json, results, "sdls")


if __name__ == "__main__":
    main()
