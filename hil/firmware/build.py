"""Build MicroPython's rp2 port with farside frozen in, from a MicroPython source tree.

    result = build_firmware(BuildOptions(board="pico"))
    result.uf2, result.size, result.frozen

The source is a MicroPython tree with the rp2 port's submodules, or a tarball of one that is
unpacked once into a build folder (the user's cache unless told otherwise) and reused. The
build is upstream's own: `make -C mpy-cross`, then `make BOARD=... FROZEN_MANIFEST=...` in
ports/rp2 with a small manifest that keeps the port's modules and adds firmware_py/manifest.py
and a generated record of what it froze (hil.firmware.frozen: `firmware_py/_frozen.py`, the
sources' digest and version, which `farside flash` compares with the sources it would install).
pico-sdk is configured with PICO_NO_PICOTOOL (it would download picotool), so the UF2 is
written here from firmware.bin. make's output goes to a log file kept in the build folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hil.cache import user_cache
from hil.errors import FarsideError
from hil.firmware.frozen import (
    FARSIDE_PREFIXES,
    FROZEN_RECORD,
    manifest_sources,
    record_text,
    source_digest,
)
from hil.firmware.uf2 import (
    FAMILY_NAMES,
    FAMILY_RP2040,
    FAMILY_RP2350_ARM_S,
    FLASH_BASE,
    bin_to_uf2,
)

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "firmware_py" / "manifest.py"
# The MicroPython source kept beside the project (upstream v1.28.0 with the rp2 submodules).
DEFAULT_SOURCE = ROOT.parent / "shared" / "rp2" / "micropython-v1.28.0-rp2-src.tgz"
SOURCE_ENV = "FARSIDE_MICROPYTHON_SRC"
TOOLCHAIN_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"

Progress = Callable[[str], None]


class BuildError(FarsideError):
    """A firmware build that cannot start or did not finish."""


@dataclass(frozen=True)
class Target:
    """A farside board and what MicroPython's rp2 port calls it."""

    board: str
    mp_board: str
    family_id: int
    mcpu: str  # for checking that the toolchain's C libraries exist for this core
    submodules: tuple[str, ...] = ("lib/pico-sdk", "lib/tinyusb", "lib/micropython-lib")


TARGETS: dict[str, Target] = {
    "pico": Target("pico", "RPI_PICO", FAMILY_RP2040, "cortex-m0plus"),
    "pico2": Target("pico2", "RPI_PICO2", FAMILY_RP2350_ARM_S, "cortex-m33"),
    "pico_w": Target(
        "pico_w",
        "RPI_PICO_W",
        FAMILY_RP2040,
        "cortex-m0plus",
        ("lib/pico-sdk", "lib/tinyusb", "lib/micropython-lib", "lib/cyw43-driver", "lib/lwip", "lib/btstack"),
    ),
}


@dataclass
class BuildOptions:
    """What to build, from what, and where to put it (None: the defaults below)."""

    board: str = "pico"
    micropython_src: Path | None = None  # a tree or a .tgz; else $FARSIDE_MICROPYTHON_SRC, else DEFAULT_SOURCE
    build_dir: Path | None = None  # where a tarball is unpacked and the port is built
    out: Path | None = None  # default ./build/farside-<board>-<version>.uf2
    jobs: int | None = None  # make -j; default the CPUs this process may use
    manifest: Path = field(default_factory=lambda: MANIFEST)


@dataclass(frozen=True)
class BuildResult:
    """A finished build: the UF2 and what went into it."""

    uf2: Path
    size: int
    board: str
    mp_board: str
    family_id: int
    micropython_version: str
    frozen: tuple[str, ...]  # every frozen module's source name, e.g. "firmware_py/app.py"
    tree: Path
    log: Path
    seconds: float
    frozen_hash: str = ""  # the digest of the farside sources frozen in (hil.firmware.frozen)

    @property
    def farside_frozen(self) -> tuple[str, ...]:
        """The frozen modules that are farside's."""
        return tuple(m for m in self.frozen if m.startswith(FARSIDE_PREFIXES))

    def to_json(self) -> dict[str, object]:
        return {
            "uf2": str(self.uf2),
            "size": self.size,
            "board": self.board,
            "micropython_board": self.mp_board,
            "family_id": f"0x{self.family_id:08X}",
            "micropython_version": self.micropython_version,
            "frozen_modules": len(self.frozen),
            "farside_modules": len(self.farside_frozen),
            "frozen": list(self.frozen),
            "frozen_hash": self.frozen_hash,
            "source": str(self.tree),
            "log": str(self.log),
            "seconds": round(self.seconds, 1),
        }


def target_for(board: str) -> Target:
    """The build target of a farside board name."""
    if board == "sim":
        raise BuildError("--board sim is the virtual board: it has no firmware image to build")
    try:
        return TARGETS[board]
    except KeyError:
        raise BuildError(f"unknown board {board!r}: choose one of {', '.join(TARGETS)}") from None


def check_tools(target: Target) -> None:
    """Fail with one line naming what to install when a build tool is missing."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise BuildError(
            f"arm-none-eabi-gcc not found: install the Arm toolchain (apt-get install {TOOLCHAIN_PACKAGES})"
        )
    for lib, package in (("libc.a", "libnewlib-arm-none-eabi"), ("libstdc++.a", "libstdc++-arm-none-eabi-newlib")):
        try:
            found = subprocess.run(
                [gcc, f"-mcpu={target.mcpu}", "-mthumb", f"-print-file-name={lib}"],
                capture_output=True, text=True, timeout=30, check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            raise BuildError(f"{gcc} does not run ({exc}): reinstall {TOOLCHAIN_PACKAGES}") from None
        if not os.path.isabs(found) or not os.path.exists(found):
            raise BuildError(
                f"{lib} for arm-none-eabi not found: apt-get install {package} (the toolchain is {TOOLCHAIN_PACKAGES})"
            )
    for tool, package in (("make", "make"), ("cmake", "cmake")):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} not found: install it (apt-get install {package})")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        raise BuildError("no host C compiler (cc) to build mpy-cross: apt-get install gcc")


def _cache_dir() -> Path:
    return user_cache() / "micropython"


def source_path(given: Path | None) -> tuple[Path, str]:
    """The source to build and where that choice came from."""
    if given is not None:
        return given, "--micropython-src"
    env = os.environ.get(SOURCE_ENV)
    if env:
        return Path(env), f"${SOURCE_ENV}"
    if DEFAULT_SOURCE.exists():
        return DEFAULT_SOURCE, "default"
    raise BuildError(
        f"no MicroPython source: pass --micropython-src DIR|FILE.tgz or set ${SOURCE_ENV} "
        "(a MicroPython tree with the rp2 port's submodules)"
    )


def check_tree(tree: Path, target: Target) -> str:
    """Check that `tree` is a MicroPython tree that can build `target`; its version."""
    mpconfig = tree / "py" / "mpconfig.h"
    if not mpconfig.is_file():
        raise BuildError(f"not a MicroPython source tree (no py/mpconfig.h): {tree}")
    for need in ("mpy-cross/Makefile", "ports/rp2/Makefile", "tools/makemanifest.py"):
        if not (tree / need).is_file():
            raise BuildError(f"MicroPython tree without {need}: {tree}")
    if not (tree / "ports" / "rp2" / "boards" / target.mp_board).is_dir():
        raise BuildError(f"this MicroPython has no rp2 board {target.mp_board}: {tree}")
    for sub in target.submodules:
        d = tree / sub
        if not d.is_dir() or not any(d.iterdir()):
            raise BuildError(
                f"the MicroPython tree lacks the submodule {sub} that {target.mp_board} needs "
                f"(make -C ports/rp2 BOARD={target.mp_board} submodules): {tree}"
            )
    text = mpconfig.read_text(errors="replace")
    parts = [re.search(rf"#define MICROPY_VERSION_{p}\s+\(?(\d+)", text) for p in ("MAJOR", "MINOR", "MICRO")]
    return ".".join(m.group(1) for m in parts if m) or "unknown"


def _find_tree(folder: Path) -> Path:
    """The MicroPython tree in an unpacked folder: the folder or its only subfolder."""
    if (folder / "py" / "mpconfig.h").is_file():
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir()]
    if len(subs) == 1 and (subs[0] / "py" / "mpconfig.h").is_file():
        return subs[0]
    return folder


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def _locked(lock_path: Path, progress: Progress) -> Iterator[None]:
    """Hold an exclusive lock so two builds never share a build folder at once."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting for another build in {lock_path.parent}")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def unpack(tarball: Path, folder: Path, progress: Progress) -> Path:
    """Unpack `tarball` into `folder` once (a marker names the tarball's digest); the tree."""
    marker = folder / ".farside-source"
    digest = _sha256(tarball)
    if marker.is_file():
        if marker.read_text().strip() == digest:
            return _find_tree(folder)
        progress(f"{folder} holds another source: unpacking {tarball.name} afresh")
        shutil.rmtree(folder)
    elif folder.exists() and any(folder.iterdir()):
        raise BuildError(f"build folder is not empty and was not made by farside: {folder}")
    progress(f"unpacking {tarball.name} into {folder}")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with tarfile.open(tarball) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(partial, filter="data")
            else:  # Python < 3.11.4
                tf.extractall(partial)  # noqa: S202
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise BuildError(f"cannot unpack {tarball}: {exc}") from None
    (partial / ".farside-source").write_text(digest + "\n")
    if folder.exists():
        folder.rmdir()
    partial.rename(folder)
    return _find_tree(folder)


def frozen_names(frozen_content: Path) -> tuple[str, ...]:
    """The frozen modules named in a build's frozen_content.c (mpy-tool's mp_frozen_names)."""
    try:
        text = frozen_content.read_text(errors="replace")
    except OSError:
        return ()
    m = re.search(r"const char mp_frozen_names\[\] = \{(.*?)\};", text, re.S)
    if m is None:
        return ()
    return tuple(n for n in re.findall(r'"([^"\\]*)\\0"', m.group(1)) if n)


def _first_error(log: Path) -> str:
    """The first line of a build log that reads like the cause of the failure."""
    pattern = re.compile(r"error:|CMake Error|fatal error|cannot find|No such file|not found|\*\*\*")
    try:
        with log.open(errors="replace") as f:
            for line in f:
                if pattern.search(line):
                    return line.strip()[:200]
    except OSError:
        pass
    return ""


def _jobs(jobs: int | None) -> int:
    if jobs is not None:
        return max(1, jobs)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def farside_version() -> str:
    """The firmware's version (firmware_py/version.py)."""
    text = (ROOT / "firmware_py" / "version.py").read_text()
    parts = [re.search(rf"^{p} = const\((\d+)\)", text, re.M) for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(m.group(1) if m else "0" for m in parts)


def _manifest_text(tree: Path, target: Target, manifest: Path, record_dir: Path) -> str:
    board_manifest = tree / "ports" / "rp2" / "boards" / target.mp_board / "manifest.py"
    first = (
        "$(BOARD_DIR)/manifest.py" if board_manifest.is_file() else "$(PORT_DIR)/boards/manifest.py"
    )
    return (
        "# Written by `farside firmware build`: the port's own modules, farside, and the\n"
        "# record of what was frozen of farside (its sources' digest and version).\n"
        f"include({first!r})\n"
        f"include({str(manifest)!r})\n"
        f"module({FROZEN_RECORD!r}, base_path={str(record_dir)!r})\n"
    )


def write_record(tree: Path, target: Target, manifest: Path, folder: Path) -> str:
    """Write the frozen record module under `folder` (only when it changes); its digest."""
    port_dir = tree / "ports" / "rp2"
    try:
        sources = manifest_sources(manifest, tree, port_dir, port_dir / "boards" / target.mp_board)
    except Exception as exc:  # noqa: BLE001 - MicroPython's manifest reader raises its own errors
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise BuildError(f"frozen manifest {manifest}: {why}") from None
    if not sources:
        raise BuildError(f"frozen manifest {manifest} freezes no farside module ({', '.join(FARSIDE_PREFIXES)})")
    digest = source_digest(sources)
    record = folder / FROZEN_RECORD
    text = record_text(digest, sources)
    record.parent.mkdir(parents=True, exist_ok=True)
    if not record.is_file() or record.read_text() != text:
        record.write_text(text)
    return digest


def build_firmware(options: BuildOptions, progress: Progress | None = None) -> BuildResult:
    """Build the rp2 firmware with farside frozen in and write its UF2."""
    say: Progress = progress or (lambda _msg: None)
    started = time.monotonic()
    target = target_for(options.board)
    manifest = options.manifest.resolve()
    if not manifest.is_file():
        raise BuildError(f"frozen manifest not found: {manifest}")
    check_tools(target)
    src, how = source_path(options.micropython_src)
    src = src.expanduser().resolve()
    if not src.exists():
        raise BuildError(f"MicroPython source not found ({how}): {src}")
    jobs = _jobs(options.jobs)
    build_dir = options.build_dir.expanduser().resolve() if options.build_dir else None

    if src.is_dir():
        tree = src
        check_tree(tree, target)
        rp2_build = (build_dir or tree / "ports" / "rp2") / f"build-farside-{target.mp_board}"
        lock = rp2_build.with_name(rp2_build.name + ".lock")
    else:
        if not tarfile.is_tarfile(src):
            raise BuildError(f"MicroPython source is neither a folder nor a tarball: {src}")
        stem = re.sub(r"\.(tgz|tar\.gz|tar\.bz2|tar\.xz|tar)$", "", src.name)
        folder = build_dir or _cache_dir() / f"{stem}-{_sha256(src)[:12]}"
        lock = folder.with_name(folder.name + ".lock")
        rp2_build = Path()  # set below, once unpacked

    with _locked(lock, say):
        if not src.is_dir():
            tree = unpack(src, folder, say)
            rp2_build = tree / "ports" / "rp2" / f"build-farside-{target.mp_board}"
        version = check_tree(tree, target)
        if not os.access(tree / "mpy-cross", os.W_OK):
            raise BuildError(f"MicroPython tree is read-only (make builds in it): pass its .tgz instead: {tree}")

        # A changed configuration (manifest, board) is a fresh cmake build folder: the port's
        # Makefile only runs cmake when the folder has no Makefile yet.
        config = {"board": target.mp_board, "manifest": str(manifest), "tree": str(tree)}
        stamp = rp2_build / "farside-config.json"
        if rp2_build.exists():
            try:
                same = json.loads(stamp.read_text()) == config
            except (OSError, ValueError):
                same = False
            if not same:
                shutil.rmtree(rp2_build)
        rp2_build.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(config) + "\n")
        record_dir = rp2_build / "farside_frozen"
        frozen_hash = write_record(tree, target, manifest, record_dir)
        wrapper = rp2_build / "farside_manifest.py"
        text = _manifest_text(tree, target, manifest, record_dir)
        if not wrapper.is_file() or wrapper.read_text() != text:
            wrapper.write_text(text)

        log = rp2_build / "farside-build.log"
        env = dict(os.environ)
        # CMAKE_ARGS from the environment: the port's Makefile appends its own to it (given on
        # make's command line it would replace them)
        env["CMAKE_ARGS"] = (env.get("CMAKE_ARGS", "") + " -DPICO_NO_PICOTOOL=1").strip()
        steps = [
            ("mpy-cross", ["make", f"-j{jobs}", "-C", str(tree / "mpy-cross")]),
            (
                f"MicroPython {version} for {target.mp_board} with farside frozen in",
                [
                    "make", f"-j{jobs}", "-C", str(tree / "ports" / "rp2"),
                    f"BOARD={target.mp_board}", f"BUILD={rp2_build}", f"FROZEN_MANIFEST={wrapper}",
                ],
            ),
        ]
        say(f"make's output goes to {log}")
        with log.open("w") as out:
            for what, cmd in steps:
                say(f"building {what} (make -j{jobs})")
                out.write(f"$ CMAKE_ARGS={env['CMAKE_ARGS']!r} {' '.join(cmd)}\n")
                out.flush()
                try:
                    rc = subprocess.run(
                        cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, check=False,
                    ).returncode
                except OSError as exc:
                    raise BuildError(f"cannot run {cmd[0]}: {exc}") from None
                if rc != 0:
                    cause = _first_error(log)
                    raise BuildError(
                        f"build failed: {what}: make exited {rc}"
                        + (f" ({cause})" if cause else "")
                        + f"; full log: {log}"
                    )

        firmware_bin = rp2_build / "firmware.bin"
        if not firmware_bin.is_file():
            raise BuildError(f"build failed: make made no {firmware_bin.name}; full log: {log}")
        frozen = frozen_names(rp2_build / "frozen_content.c")
        if not any(m.startswith(FARSIDE_PREFIXES) for m in frozen):
            raise BuildError(f"the build froze no farside module (manifest {manifest}); full log: {log}")
        if FROZEN_RECORD not in frozen:
            raise BuildError(f"the build did not freeze its record {FROZEN_RECORD}; full log: {log}")
        uf2 = bin_to_uf2(firmware_bin.read_bytes(), FLASH_BASE, target.family_id)

    out_path = options.out or Path("build") / f"farside-{target.board}-{farside_version()}.uf2"
    out_path = out_path.expanduser()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial_out = out_path.with_name(out_path.name + ".partial")
    partial_out.write_bytes(uf2)
    os.replace(partial_out, out_path)
    return BuildResult(
        uf2=out_path.resolve(),
        size=len(uf2),
        board=target.board,
        mp_board=target.mp_board,
        family_id=target.family_id,
        micropython_version=version,
        frozen=frozen,
        tree=tree,
        log=log,
        seconds=time.monotonic() - started,
        frozen_hash=frozen_hash,
    )


def family_name(family_id: int) -> str:
    """A UF2 family id's chip name, or its hex value."""
    return FAMILY_NAMES.get(family_id, f"0x{family_id:08X}")
