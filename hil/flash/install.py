"""`farside flash`: put the rover on a board, atomically, moving only what changed.

Steps (each one a raw-REPL exchange; see bootfiles.py for the board layout):
 1. build the image on the PC (mpy-cross for the board's arch, board definition,
    canonical dictionary, keys);
 2. get the board's raw REPL: Ctrl-C, else the ENTER_REPL command on the link, else
    (a virtual board) a reset and Ctrl-C inside main.py's escape window; retried with
    backoff, then a one-line error with what was seen. A port that fails on the way (on
    rp2 ENTER_REPL resets the board, and USB re-enumerates) is closed and the board found
    again by its serial number. Then a soft reset (a fresh heap: a stopped rover leaves
    its modules loaded; a board that comes back running main.py is attached again), the
    agent (hil/flash/agent.py), and a leftover `enter_repl` flag deleted;
 3. survey: MicroPython version and .mpy format, which slot boots, every slot file's
    size and SHA-256 (computed on the board), and what the firmware froze of farside. When
    its frozen record's digest is that of the sources (hil.firmware.frozen), the image
    leaves firmware_py/ and boards/ out (choose_image): the frozen bytecode runs from flash;
    otherwise the .mpy files go into the slot and shadow the frozen ones (a note says so);
 4. plan: staging slot = the one that does not boot; per file keep (already there),
    copy (on the board, from the booting slot), upload (over the link), delete (anything
    else in the staging slot). The rover's own state (bootfiles.ROVER_STATE_FILES) is
    never part of the image and never copied: a new slot holds the image only;
 5. stage: mark the staging slot incomplete (remove its MANIFEST), copy, upload in
    chunks (a bytes literal or base64, whichever is shorter), verify every file's hash
    on the board (a slot relying on frozen modules: no firmware_py/ or boards/ folder left
    in it, and the board imports both packages from ".frozen" when run from it), write
    MANIFEST (by rename); replace boot.py / main.py by rename if they changed; switch
    `farside/active` by rename. (Firmware already current and only
    boot.py / main.py differ: only those are replaced, the booting slot is not touched.)
 6. reset, find the port again (USB serial number), and wait for the rover's BOOT
    event (as long as the board definition's boot_timeout_s): its firmware version and
    dictionary hash must match the image.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import serial

from hil.board import VirtualBoard
from hil.errors import FarsideError
from hil.firmware.frozen import FrozenRecord
from hil.flash.agent import minified
from hil.flash.bootfiles import ROOT_FILES, is_rover_state
from hil.flash.image import Image, board_boot_timeout, build_image, load_board_definition
from hil.flash.link import BootEvent, command_bytes, console_text, reported_arsn, wait_boot_event
from hil.flash.ports import BoardPort, refind, resolve_port
from hil.flash.repl import PortBusyError, PortGoneError, RawRepl, RawReplError, open_port

MIN_MICROPYTHON = (1, 20, 0)
SLOT_DIR = "farside"
# How long a board whose port went away (a reset, USB re-enumerating) has to come back.
REFIND_S = 15.0
Progress = Callable[[str, int, int, str], None]  # (phase, done, total, path)
T = TypeVar("T")


@dataclass
class FileAction:
    path: str
    action: str  # keep | copy | upload | delete
    size: int


@dataclass
class Plan:
    """What a flash will do to the board."""

    active: str | None
    staging: str
    files: list[FileAction] = field(default_factory=list)
    root: list[str] = field(default_factory=list)
    up_to_date: bool = False

    def paths(self, action: str) -> list[str]:
        return [f.path for f in self.files if f.action == action]

    @property
    def upload_bytes(self) -> int:
        return sum(f.size for f in self.files if f.action == "upload")


@dataclass
class FlashOptions:
    board: str = "sim"
    port: str = "auto"
    source: Path | None = None
    keys: Path | None = None
    dictionary: Path | None = None
    dry_run: bool = False
    verify_only: bool = False
    reset: bool = True
    wait_boot: bool = True
    boot_timeout_s: float | None = None  # None: the board definition's boot_timeout_s
    min_micropython: tuple[int, int, int] = MIN_MICROPYTHON
    chunk_bytes: int = 3072
    exec_timeout_s: float = 20.0
    attach_attempts: int = 4


@dataclass
class FlashReport:
    port: str
    board: str
    version: int
    dict_hash: int
    plan: Plan
    dry_run: bool = False
    payload_bytes: int = 0
    wire_bytes: int = 0
    setup_bytes: int = 0
    seconds: float = 0.0
    micropython: str = ""
    attach: str = ""
    boot: BootEvent | None = None
    boot_note: str = ""
    boot_timeout_s: float = 0.0
    frozen: bool = False  # the slot holds no modules: the firmware's frozen ones run
    frozen_hash: str = ""  # the board's frozen record ("" if nothing of farside is frozen)
    imports: dict[str, str | None] | None = None  # package -> __path__ on the board (frozen)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "board": self.board,
            "version": self.version,
            "dict_hash": f"{self.dict_hash:08x}",
            "dry_run": self.dry_run,
            "up_to_date": self.plan.up_to_date,
            "active_slot_before": self.plan.active,
            "slot": self.plan.staging if not self.plan.up_to_date else self.plan.active,
            "files": [asdict(f) for f in self.plan.files],
            "root_files": self.plan.root,
            "payload_bytes": self.payload_bytes,
            "wire_bytes": self.wire_bytes,
            "setup_bytes": self.setup_bytes,
            "seconds": round(self.seconds, 3),
            "micropython": self.micropython,
            "attach": self.attach,
            "boot": self.boot.to_json() if self.boot else None,
            "boot_note": self.boot_note,
            "boot_timeout_s": self.boot_timeout_s,
            "frozen": self.frozen,
            "frozen_hash": self.frozen_hash,
            "imports": self.imports,
            "notes": self.notes,
        }


def _slot_path(slot: str, rel: str = "") -> str:
    return f"{SLOT_DIR}/{slot}" + (f"/{rel}" if rel else "")


def booting_slot(survey: dict[str, Any]) -> str | None:
    """The slot boot.py takes: the pointer's if complete, else the other if complete."""
    want = (survey.get("active") or "a").strip()
    if want not in ("a", "b"):
        want = "a"
    for s in (want, "b" if want == "a" else "a"):
        if slot_complete(survey, s):
            return s
    return None


def slot_complete(survey: dict[str, Any], slot: str) -> bool:
    info = survey["slots"][slot]
    manifest = info.get("manifest")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return False
    files = info["files"]
    for name, (size, _digest) in manifest["files"].items():
        if name not in files or files[name][0] != size:
            return False
    return True


def make_plan(survey: dict[str, Any], image: Image) -> Plan:
    """Decide what moves. Only files whose hash differs from every copy on the board
    travel over the link."""
    active = booting_slot(survey)
    staging = "b" if active == "a" else "a"
    root = [name for name, data in ROOT_FILES.items() if survey["root"].get(name) != _sha(data)]
    want = {p: image.digest(p) for p in image.files}
    if active is not None:
        act = survey["slots"][active]
        manifest = act["manifest"]["files"]
        have = {p: v[1] for p, v in act["files"].items()}
        if all(have.get(p) == d for p, d in want.items()) and set(manifest) == set(want):
            # The firmware is there; at most boot.py / main.py need replacing (by rename).
            files = [FileAction(p, "keep", len(image.files[p])) for p in sorted(want)]
            return Plan(active, active, files, root, up_to_date=not root)
    if any(is_rover_state(p) for p in want):
        bad = sorted(p for p in want if is_rover_state(p))
        raise FarsideError(f"the image holds {bad[0]}, a file the rover writes at run time")
    stage_files = {
        p: v[1]
        for p, v in survey["slots"][staging]["files"].items()
        if p != "MANIFEST" and p != "MANIFEST.new"
    }
    act_files: dict[str, str] = {}
    if active is not None:
        act_files = {
            p: v[1] for p, v in survey["slots"][active]["files"].items() if not is_rover_state(p)
        }
    plan = Plan(active, staging, [], root)
    for p in sorted(want):
        size = len(image.files[p])
        if stage_files.get(p) == want[p]:
            plan.files.append(FileAction(p, "keep", size))
        elif act_files.get(p) == want[p]:
            plan.files.append(FileAction(p, "copy", size))
        else:
            plan.files.append(FileAction(p, "upload", size))
    # Everything else in the staging slot goes: an older image's files, and the rover state
    # of its last run. Nothing of the booting slot's rover state comes along.
    for p in sorted(stage_files):
        if p not in want:
            plan.files.append(FileAction(p, "delete", survey["slots"][staging]["files"][p][0]))
    return plan


def _version(v: int) -> str:
    return f"{v >> 16}.{(v >> 8) & 0xFF}.{v & 0xFF}"


def choose_image(image: Image, survey: dict[str, Any]) -> tuple[Image, str]:
    """The image for this board and a note on why: without farside's modules when the
    firmware has exactly these sources frozen in, else `image` (its .mpy files then
    shadow whatever is frozen)."""
    record = FrozenRecord.from_json(survey.get("frozen"))
    if record is None:
        return image, ""
    if record.digest != image.frozen_digest:
        if record.version < image.version:
            why = f"older than the sources ({_version(record.version)} < {_version(image.version)})"
        else:
            why = f"built from other sources than these ({record.digest[:12]}, these {image.frozen_digest[:12]})"
        return image, f"frozen firmware is {why}: .mpy overrides installed"
    shadow = [n for n in survey.get("shadow") or () if isinstance(n, str)]
    if shadow:
        return image, (
            f"{shadow[0]}/ at the root of the board's filesystem would shadow the frozen modules: "
            ".mpy overrides installed (remove it to run the frozen ones)"
        )
    return image.relying_on_frozen(), (
        f"firmware_py is frozen into the firmware (sources {record.digest[:12]}): "
        "no modules in the slot, the frozen bytecode runs from flash"
    )


FROZEN_PATH = {"firmware_py": ".frozen/firmware_py", "boards": ".frozen/boards"}


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _q(s: str) -> str:
    return json.dumps(s)


def _literal(data: bytes) -> str:
    """The shorter of a bytes literal and a base64 string, as Python source."""
    b64 = '"' + base64.b64encode(data).decode() + '"'
    lit = repr(data)
    return lit if len(lit) < len(b64) else b64


class Flasher:
    """One flash of one board; see the module docstring for the steps."""

    def __init__(self, options: FlashOptions, progress: Progress | None = None) -> None:
        self.options = options
        self.progress = progress or (lambda phase, done, total, path: None)
        self.port: BoardPort | None = None
        self.ser: serial.Serial | None = None
        self.repl: RawRepl | None = None
        self.payload_bytes = 0
        self.wire_bytes = 0
        self.image: Image | None = None
        self.attach_method = ""
        self.boot_timeout_s = 0.0
        self.imports: dict[str, str | None] | None = None

    # ---- connection ----------------------------------------------------------------------

    def _open(self) -> RawRepl:
        assert self.port is not None
        self.ser = open_port(self.port.device)
        self.repl = RawRepl(self.ser, self.port.label)
        return self.repl

    def _close(self) -> None:
        if self.repl is not None:
            self.wire_bytes += self.repl.bytes_written
            self.repl = None
        if self.ser is not None:
            try:
                self.ser.close()
            except (serial.SerialException, OSError):
                pass
            self.ser = None

    def _repl(self) -> RawRepl:
        return self.repl or self._open()

    def _reopen(self, why: str) -> None:
        """The port failed under us (the board reset and USB re-enumerated, or it was
        unplugged): close it, find the board again by serial number (its device may have
        a new name) and open the port it comes back on; FarsideError when it does not
        come back within REFIND_S."""
        assert self.port is not None
        gone = self.port.label
        self.progress("connect", 0, 1, f"{self.port.device} went away; finding the board again")
        self._close()
        time.sleep(0.5)  # a USB device takes a moment to go away before it comes back
        deadline = time.monotonic() + REFIND_S
        while True:
            try:
                self.port = refind(self.port, timeout_s=max(0.1, deadline - time.monotonic()))
                self._open()
                return
            except PortBusyError:
                raise
            except FarsideError as exc:
                if time.monotonic() >= deadline:
                    raise FarsideError(
                        f"{gone}: the port went away ({why.rsplit('(', 1)[-1].rstrip(')')}) "
                        f"and the board did not come back: {exc}"
                    ) from exc
            time.sleep(0.2)

    def _on_port(self, step: Callable[[RawRepl], T], attempts: int = 4) -> T:
        """Run `step` on the board's raw-REPL client. When the port fails under it, find
        the board again (_reopen) and run the step on the new port."""
        for attempt in range(attempts):
            try:
                return step(self._repl())
            except PortGoneError as exc:
                if attempt == attempts - 1:
                    raise
                self._reopen(str(exc))
        raise AssertionError("unreachable")

    def attach(self) -> RawRepl:
        """Get the raw REPL, interrupting a running rover if needed. On rp2 ENTER_REPL
        resets the board: the port may fail on the way and is then opened anew (_on_port)."""
        assert self.port is not None and self.image is not None
        ok, seen = self._on_port(lambda r: r.try_enter(0.5))
        if ok:
            self.attach_method = "ctrl-c"
            return self._repl()
        # The rover runs with Ctrl-C off: ask it on its link, in a BD frame whose sequence
        # number is above what the rover reports (its HK, about once a second).
        self.progress("interrupt", 0, 1, "ENTER_REPL")
        seen += self._on_port(lambda r: r.drain(quiet_s=1.5, max_s=1.5))
        try:
            frame = command_bytes(self.image.files["keys.json"], 200, 10, above=reported_arsn(seen))
        except Exception as exc:  # noqa: BLE001 - the link path is best effort here
            frame = b""
            seen += f" (could not build ENTER_REPL: {exc})".encode()
        if frame:
            self._on_port(lambda r: r.write(frame))
        # The rover answers, flushes its TM and returns to the REPL (rp2: through a reset).
        seen += self._on_port(lambda r: r.read_until(b">>> ", 1.5))
        delay = 0.2
        for attempt in range(self.options.attach_attempts):
            ok, more = self._on_port(lambda r: r.try_enter(1.0))
            seen += more
            if ok:
                self.attach_method = "enter_repl"
                return self._repl()
            if attempt in (0, 2) and self.port.virtual is not None:
                # Reset into main.py's escape window and Ctrl-C there.
                self._on_port(self._reset_for_escape)
                ok, more = self._on_port(lambda r: r.try_enter(1.0))
                seen += more
                if ok:
                    self.attach_method = "reset"
                    return self._repl()
            time.sleep(delay)
            delay *= 2
        tried = (
            "Ctrl-C, ENTER_REPL and a reset"
            if self.port.virtual is not None
            else "Ctrl-C and ENTER_REPL"
        )
        hint = (
            ""
            if self.port.virtual is not None
            else " (press the board's reset and run farside flash again at once)"
        )
        raise RawReplError(
            f"{self.port.label}: expected the raw REPL after {tried}, saw {seen[-80:]!r}; "
            f"is this a MicroPython board?{hint}"
        )

    def _follow_port(self) -> bool:
        """After a reset: find the board again by serial number; True if its port moved."""
        assert self.port is not None
        moved = refind(self.port, timeout_s=15.0)
        changed = moved.device != self.port.device
        self.port = moved
        return changed

    def _reset_for_escape(self, repl: RawRepl) -> RawRepl:
        """Reset a virtual board and Ctrl-C into main.py's escape window."""
        assert self.port is not None and self.port.virtual is not None
        VirtualBoard(self.port.virtual).reset()
        if self._follow_port():
            self._close()
            repl = self._open()
        # Ctrl-C every 50 ms through the escape window.
        end = time.monotonic() + 2.5
        seen = b""
        while time.monotonic() < end:
            repl.write(b"\x03")
            time.sleep(0.05)
            seen += repl.drain(quiet_s=0.0, max_s=0.01)
            if b"stopped at the REPL" in seen or seen.endswith(b">>> "):
                break
        return repl

    def fresh_heap(self, attempts: int = 3) -> None:
        """Soft reset at the raw prompt: a fresh heap (a stopped rover leaves its modules
        loaded) and boot.py's FARSIDE_ROOT. A board that comes back running main.py instead
        of at the raw prompt is attached again (Ctrl-C in its escape window, ENTER_REPL, a
        reset) and soft reset again, with backoff."""
        assert self.repl is not None
        delay = 0.2
        for attempt in range(attempts):
            try:
                self.repl.soft_reset()
                return
            except RawReplError:
                if attempt == attempts - 1:
                    raise
            self.progress("connect", attempt + 1, attempts, "again after the soft reset")
            time.sleep(delay)
            delay *= 2
            self.attach()

    # ---- board-side helpers -----------------------------------------------------------

    def clear_repl_flag(self) -> None:
        """Delete ENTER_REPL's flag from both slots: main.py consumes it at the boot after
        the rover's reset, unless a Ctrl-C stopped main.py before it did. Left there, the
        next boot would stay at the REPL instead of starting the rover."""
        flags = [_slot_path(s, "enter_repl") for s in ("a", "b")]
        self.call(f"_fa_rms('',{json.dumps(flags)})")

    def call(self, code: str, timeout_s: float | None = None) -> str:
        assert self.repl is not None
        return self.repl.eval(code, timeout_s or self.options.exec_timeout_s)

    def survey(self) -> dict[str, Any]:
        """The board's MicroPython, its slots and every slot file's size and SHA-256."""
        out = self.call("_fa_survey()", timeout_s=max(60.0, self.options.exec_timeout_s))
        lines = out.strip().splitlines()
        try:
            survey: dict[str, Any] = json.loads(lines[0])
        except (ValueError, IndexError) as exc:
            raise FarsideError(f"expected the board's survey as JSON, saw {out[:80]!r}") from exc
        survey["root"] = {}
        survey["slots"] = {s: {"manifest": None, "files": {}} for s in ("a", "b")}
        for line in lines[1:]:
            kind, _, rest = line.partition(" ")
            if kind == "R":
                name, digest = rest.split(" ", 1)
                survey["root"][name] = digest
            elif kind == "M":
                slot, text = rest.split(" ", 1)
                try:
                    survey["slots"][slot]["manifest"] = json.loads(text)
                except ValueError:
                    survey["slots"][slot]["manifest"] = None
            elif kind == "F":
                slot, size, digest, path = rest.split(" ", 3)
                survey["slots"][slot]["files"][path] = [int(size), digest]
        return survey

    def check_micropython(self, survey: dict[str, Any]) -> None:
        assert self.image is not None
        version = tuple(int(v) for v in survey.get("version", [0, 0, 0])[:3])
        label = ".".join(map(str, version))
        need = self.options.min_micropython
        if version < need:
            raise FarsideError(
                f"MicroPython {label} on the board is too old: expected {'.'.join(map(str, need))} or newer "
                "(update the board's MicroPython firmware)"
            )
        board_mpy = int(survey.get("mpy", 0)) & 0xFF
        if self.image.mpy_version and board_mpy != self.image.mpy_version:
            raise FarsideError(
                f"MicroPython {label} on the board loads .mpy v{board_mpy}, mpy-cross emits v{self.image.mpy_version}: "
                "update the board's MicroPython or install a matching mpy-cross"
            )

    def _upload(self, board_path: str, data: bytes, label: str, done: int, total: int) -> int:
        chunk = self.options.chunk_bytes
        if len(data) <= chunk:
            self.call(f"_fa_put({_q(board_path)},{_literal(data)})")
            self.payload_bytes += len(data)
            done += len(data)
            self.progress("upload", done, total, label)
            return done
        self.call(f"_fa_open({_q(board_path)})")
        for i in range(0, len(data), chunk):
            part = data[i : i + chunk]
            self.call(f"_fa_w({_literal(part)})")
            self.payload_bytes += len(part)
            done += len(part)
            self.progress("upload", done, total, label)
        self.call("_fa_close()")
        return done

    def hashes(self, board_paths: list[str], prefix: str = "") -> dict[str, str | None]:
        """SHA-256 of files on the board, computed there: {prefix + path: hex or None}."""
        out = self.call(
            f"_fa_hashes({json.dumps(board_paths)},{_q(prefix)})",
            timeout_s=max(120.0, self.options.exec_timeout_s),
        )
        result: dict[str, str | None] = {}
        for line in out.strip().splitlines():
            digest, _, path = line.partition(" ")
            result[path] = None if digest == "-" else digest
        return result

    def stage(self, plan: Plan) -> None:
        """Write the staging slot, verify it, switch to it."""
        assert self.image is not None
        image = self.image
        s = plan.staging
        a = plan.active
        self.progress("stage", 0, 0, _slot_path(s))
        self.call(
            f"_fa_rm({_q(_slot_path(s, 'MANIFEST'))});_fa_rm({_q(_slot_path(s, 'MANIFEST.new'))});_fa_mkdirs({_q(_slot_path(s))});_fa_sync()"
        )
        if plan.paths("delete"):
            self.call(f"_fa_rms({_q(_slot_path(s) + '/')},{json.dumps(plan.paths('delete'))})")
        if image.frozen:  # an empty firmware_py/ or boards/ folder is a package, too
            self.call(f"_fa_rmtree({_q(_slot_path(s, 'firmware_py'))});_fa_rmtree({_q(_slot_path(s, 'boards'))})")
        copies = plan.paths("copy") + plan.paths("carry")
        if copies:
            assert a is not None
            self.progress("copy", 0, len(copies), "")
            self.call(
                f"_fa_cps({_q(_slot_path(a) + '/')},{_q(_slot_path(s) + '/')},{json.dumps(copies)})"
            )
        total = plan.upload_bytes
        done = 0
        self.progress("upload", 0, total, "")
        for p in plan.paths("upload"):
            done = self._upload(_slot_path(s, p), image.files[p], p, done, total)
        # Verify every file of the slot on the board; one retry for any that differ.
        want = {_slot_path(s, p): image.digest(p) for p in image.files}
        for attempt in range(2):
            self.progress("verify", 0, len(want), "")
            got = self.hashes(sorted(image.files), _slot_path(s) + "/")
            bad = [p for p, d in want.items() if got.get(p) != d]
            if not bad:
                break
            if attempt == 1:
                raise FarsideError(
                    f"verify failed on the board: {', '.join(b.split('/', 2)[-1] for b in bad[:3])} "
                    f"{'do' if len(bad) > 1 else 'does'} not hash as written (expected sha256 {want[bad[0]][:12]}…, saw {str(got.get(bad[0]))[:12]}…)"
                )
            for p in bad:
                rel = p.split("/", 2)[-1]
                done = self._upload(p, image.files[rel], rel, done, total + len(image.files[rel]))
        if image.frozen:
            self.check_frozen_imports(s)
        manifest = json.dumps(image.manifest(), sort_keys=True, separators=(",", ":")).encode()
        self._install_file(_slot_path(s, "MANIFEST"), manifest)
        for name in plan.root:
            self._install_file(name, ROOT_FILES[name])
        self._install_file(f"{SLOT_DIR}/active", s.encode())
        self.call("_fa_sync()")

    def check_frozen_imports(self, slot: str) -> None:
        """On the board, import firmware_py and boards as the rover will when it runs from
        `slot` (its working directory, boot.py's sys.path); FarsideError unless both come
        from ".frozen"."""
        out = self.call(f"_fa_where({_q(_slot_path(slot))})").strip().splitlines()
        try:
            where: dict[str, str | None] = json.loads(out[-1])
        except (ValueError, IndexError) as exc:
            raise FarsideError(f"expected where the board imports the rover from, saw {out[-1:]!r}") from exc
        self.imports = where
        wrong = [f"{n} from {where.get(n)!r}" for n, want in FROZEN_PATH.items() if where.get(n) != want]
        if wrong:
            raise FarsideError(
                f"the board would not import the frozen modules from slot {slot}: {', '.join(wrong)} "
                "(the slot was not switched to)"
            )

    def _install_file(self, board_path: str, data: bytes) -> None:
        """Write `path.new`, check its hash on the board, rename it over `path`."""
        tmp = board_path + ".new"
        self._upload(tmp, data, board_path, 0, len(data))
        got = self.hashes([tmp]).get(tmp)
        if got != _sha(data):
            raise FarsideError(f"verify failed on the board: {board_path} does not hash as written")
        self.call(f"_fa_rename({_q(tmp)},{_q(board_path)})")

    # ---- reset and boot ------------------------------------------------------------------

    def boot_device(self) -> str | None:
        """Where the rover's BOOT event shows: its link. That is the REPL's port, unless
        the board definition gives the link an interface of its own: then a virtual
        board's link port, or None on hardware (which serial device that is, the tool
        cannot know)."""
        assert self.port is not None and self.image is not None
        import boards

        if not boards.own_link(json.loads(self.image.files["board.json"])):
            return self.port.device
        if self.port.virtual is None:
            return None
        if not self.port.virtual.link_port:
            raise FarsideError(
                f"board {self.options.board} puts the rover's link on its own interface, but virtual board "
                f"{self.port.virtual.name} has none: start it with farside board start --board {self.options.board}"
            )
        return self.port.virtual.link_port

    def _open_boot(self) -> serial.Serial:
        """The boot device; a link of its own is shared (a ground station may hold it)."""
        assert self.port is not None
        dev = self.boot_device() or self.port.device
        if dev == self.port.device:
            return open_port(dev)
        try:
            return serial.serial_for_url(dev, baudrate=115200, timeout=0.05)
        except serial.SerialException as exc:
            raise FarsideError(f"could not open the rover's link port {dev}: {exc}") from exc

    def reset_and_wait(self, report: FlashReport) -> None:
        assert self.port is not None and self.image is not None
        self.progress("reset", 0, 0, self.port.device)
        port = self.port
        if port.virtual is not None:
            self._close()
            # Open before the reset so the first bytes of the boot are not missed.
            ser = self._open_boot()
            ser.reset_input_buffer()
            VirtualBoard(port.virtual).reset()
            if self._follow_port():  # the board re-enumerated: a new port
                ser.close()
                ser = self._open_boot()
        else:
            assert self.repl is not None
            self.repl.write(b"import machine\nmachine.reset()\n\x04")
            time.sleep(0.5)
            self._close()
            port = refind(port, timeout_s=15.0)
            self.port = port
            ser = open_port(port.device)
        try:
            if not self.options.wait_boot:
                return
            if self.boot_device() is None:
                report.boot_note = "the rover's link has its own interface: watch its BOOT there (farside gs)"
                return
            event, seen = wait_boot_event(ser, self.boot_timeout_s)
        finally:
            ser.close()
        report.boot = event
        if event is None:
            log = f"; board log: {VirtualBoard(port.virtual).log_tail()}" if port.virtual is not None else ""
            raise FarsideError(
                f"expected the rover's BOOT event within {self.boot_timeout_s:g} s after the reset, "
                f"saw none (console: {console_text(seen)}){log}"
            )
        if event.version != self.image.version or event.dict_hash != self.image.dict_hash:
            raise FarsideError(
                f"the rover booted with firmware {event.version:#08x} dictionary {event.dict_hash:08x}, "
                f"expected {self.image.version:#08x} and {self.image.dict_hash:08x}"
            )

    # ---- the whole flash -----------------------------------------------------------------

    def run(self) -> FlashReport:
        t0 = time.monotonic()
        opts = self.options
        self.progress("build", 0, 1, "")
        self.image = image = build_image(opts.board, opts.source, opts.keys, opts.dictionary)
        self.boot_timeout_s = boot_timeout(opts)
        self.port = resolve_port(opts.port)
        self.boot_device()  # a board definition that wants a link port the board lacks: now
        try:
            self.progress("connect", 0, 1, self.port.label)
            self.attach()
            self.fresh_heap()
            assert self.repl is not None
            self.call(minified())
            if not (opts.dry_run or opts.verify_only):
                self.clear_repl_flag()
            survey = self.survey()
            image, note = choose_image(image, survey)
            self.image = image
            record = FrozenRecord.from_json(survey.get("frozen"))
            self.check_micropython(survey)
            plan = make_plan(survey, image)
            setup_bytes = self.wire_bytes + self.repl.bytes_written
            report = FlashReport(
                port=self.port.device,
                board=opts.board,
                version=image.version,
                dict_hash=image.dict_hash,
                plan=plan,
                dry_run=opts.dry_run,
                micropython=".".join(str(v) for v in survey["version"]),
                boot_timeout_s=self.boot_timeout_s,
                frozen=image.frozen,
                frozen_hash=record.digest if record else "",
                notes=[note] if note else [],
            )
            if opts.verify_only:
                self._verify_only(survey, plan)
            elif not opts.dry_run:
                if plan.staging == plan.active and not plan.up_to_date:
                    for name in plan.root:  # never touch the booting slot
                        self._install_file(name, ROOT_FILES[name])
                elif not plan.up_to_date:
                    self.stage(plan)
                if opts.reset:
                    self.reset_and_wait(report)
                elif self.repl is not None:
                    self.repl.exit_raw()
        finally:
            self._close()
        report.imports = self.imports
        report.payload_bytes = self.payload_bytes
        report.wire_bytes = self.wire_bytes
        report.setup_bytes = setup_bytes
        report.attach = self.attach_method
        report.port = self.port.device
        report.seconds = time.monotonic() - t0
        return report

    def _verify_only(self, survey: dict[str, Any], plan: Plan) -> None:
        """Compare the booting slot, file by file (hashes computed on the board), with the image."""
        assert self.image is not None
        if plan.active is None:
            raise FarsideError("verify: expected a complete firmware slot on the board, found none")
        have = survey["slots"][plan.active]["files"]
        differ = [
            p for p in sorted(self.image.files) if have.get(p, [0, ""])[1] != self.image.digest(p)
        ]
        names = differ[:3] + plan.root
        if names:
            raise FarsideError(
                f"verify: slot {plan.active} differs from the image: {', '.join(names)}"
                + (f" and {len(differ) - 3} more" if len(differ) > 3 else "")
                + " (corrupted, or another build: run farside flash)"
            )


def boot_timeout(options: FlashOptions) -> float:
    """Seconds to wait for the BOOT event: the option, else the board definition's
    boot_timeout_s (boards/<name>.json)."""
    if options.boot_timeout_s is None:
        _, definition = load_board_definition(options.board)
        return board_boot_timeout(options.board, definition)
    if not options.boot_timeout_s > 0:
        raise FarsideError(
            f"boot timeout: expected a positive number of seconds, got {options.boot_timeout_s:g}"
        )
    return float(options.boot_timeout_s)


def flash(options: FlashOptions, progress: Progress | None = None) -> FlashReport:
    """Flash the rover to a board (see the module docstring); FarsideError on failure."""
    return Flasher(options, progress).run()
