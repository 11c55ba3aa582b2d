"""The project's own lint and type checks, run as part of the test suite (and so in CI)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def test_ruff_finds_nothing() -> None:
    proc = subprocess.run(
        [_tool("ruff"), "check", "protocols", "hil", "firmware_py", "boards", "tests"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_passes_on_host_code() -> None:
    proc = subprocess.run(
        [_tool("mypy"), "--no-error-summary"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_files_the_suite_starts_first_exist() -> None:
    # tests/conftest.py starts the minutes-long files first so the workers end together;
    # a renamed one would silently fall back to its place in the alphabet
    from tests.conftest import LONGEST_FILES

    assert LONGEST_FILES and all((ROOT / f).is_file() for f in LONGEST_FILES), LONGEST_FILES


def test_xdist_keeps_the_order_the_suite_gives() -> None:
    # xdist sorts loadfile's files by test count unless told not to: the minutes-long one-test
    # files then start last, and the suite waits on one of them alone at the end
    import tomllib

    opts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    assert "--no-loadscope-reorder" in opts.split(), opts
