"""What a frozen build froze, recorded in the firmware and recomputed by the flash tool.

    files = local_sources(Path("firmware_py"), Path("boards"))   {"firmware_py/app.py": b"...", ...}
    digest = source_digest(files)                                 sha256 hex
    text = record_text(digest, files)                             the frozen record module's source

`farside firmware build` freezes one more module beside the rover, FROZEN_RECORD
(`firmware_py/_frozen.py`), generated in the build folder and never committed. It holds the
digest of the farside sources the manifest froze (FARSIDE_PREFIXES, .py files) and their
firmware version. `farside flash` asks the board for it (with only ".frozen" on sys.path)
and computes the same digest over the sources it would otherwise compile: equal digests
mean the frozen bytecode is this firmware, and the slot can leave firmware_py/ and boards/
out so that the frozen modules are imported.

The digest: SHA-256 over the files sorted by their path on the board, each as
`path NUL size NUL bytes`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

# Modules under these prefixes are farside's; a slot that relies on the frozen firmware
# holds none of them (a folder of either name in the slot would shadow the frozen package).
FARSIDE_PREFIXES = ("firmware_py/", "boards/")
FROZEN_RECORD = "firmware_py/_frozen.py"
RECORD_MODULE = "firmware_py._frozen"
# Files of the firmware source that are never frozen nor installed: the freeze manifest.
NOT_FIRMWARE = ("manifest.py",)


@dataclass(frozen=True)
class FrozenRecord:
    """What a frozen firmware says it froze."""

    digest: str
    version: int
    files: int

    @classmethod
    def from_json(cls, value: object) -> FrozenRecord | None:
        """The record in the board's survey (None: nothing of farside is frozen)."""
        if not isinstance(value, dict):
            return None
        digest, version, files = value.get("hash"), value.get("version"), value.get("files")
        if not isinstance(digest, str) or not isinstance(version, int) or not isinstance(files, int):
            return None
        return cls(digest, version, files)


def _py_files(folder: Path, package: str) -> dict[str, bytes]:
    return {
        f"{package}/{p.relative_to(folder).as_posix()}": p.read_bytes()
        for p in sorted(folder.rglob("*.py"))
        if "__pycache__" not in p.parts and p.relative_to(folder).as_posix() not in NOT_FIRMWARE
    }


def local_sources(source: Path, boards_dir: Path | None) -> dict[str, bytes]:
    """The .py files the flash tool compiles, by their path on the board."""
    files = _py_files(source, "firmware_py")
    if boards_dir is not None and (boards_dir / "__init__.py").is_file():
        files.update(_py_files(boards_dir, "boards"))
    return files


def source_digest(files: Mapping[str, bytes]) -> str:
    """SHA-256 (hex) of `files`: sorted by path, each `path NUL size NUL bytes`."""
    h = hashlib.sha256()
    for path in sorted(files):
        data = files[path]
        h.update(path.encode() + b"\0" + str(len(data)).encode() + b"\0")
        h.update(data)
    return h.hexdigest()


def version_of(files: Mapping[str, bytes]) -> int:
    """VERSION of firmware_py/version.py among `files`: (major << 16) | (minor << 8) | patch."""
    text = files.get("firmware_py/version.py", b"").decode(errors="replace")
    parts = []
    for name in ("MAJOR", "MINOR", "PATCH"):
        m = re.search(rf"^{name}\s*=\s*(?:const\()?(\d+)", text, re.M)
        parts.append(int(m.group(1)) if m else 0)
    return (parts[0] << 16) | (parts[1] << 8) | parts[2]


def record_text(digest: str, files: Mapping[str, bytes]) -> str:
    """The frozen record module (MicroPython source)."""
    return (
        "# Written by `farside firmware build`: what this firmware froze of farside.\n"
        f"HASH = {digest!r}\n"
        f"VERSION = {version_of(files)}\n"
        f"FILES = {len(files)}\n"
    )


def _manifestfile(tree: Path) -> ModuleType:
    """MicroPython's tools/manifestfile.py from `tree`."""
    path = tree / "tools" / "manifestfile.py"
    spec = importlib.util.spec_from_file_location("_farside_manifestfile", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manifest_sources(manifest: Path, tree: Path, port_dir: Path, board_dir: Path) -> dict[str, bytes]:
    """The farside .py files `manifest` freezes, by their path on the board (read with the
    tree's own manifest reader, so the record names what the build compiles)."""
    mf = _manifestfile(tree)
    reader = mf.ManifestFile(
        mf.MODE_FREEZE,
        {
            "MPY_DIR": str(tree),
            "MPY_LIB_DIR": str(tree / "lib" / "micropython-lib"),
            "PORT_DIR": str(port_dir),
            "BOARD_DIR": str(board_dir),
        },
    )
    reader.execute(str(manifest))
    files: dict[str, bytes] = {}
    for entry in reader.files():
        target = str(entry.target_path).replace("\\", "/")
        if target.startswith(FARSIDE_PREFIXES) and target.endswith(".py") and target != FROZEN_RECORD:
            files[target] = Path(entry.full_path).read_bytes()
    return files
