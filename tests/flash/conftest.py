"""Fixtures for the flash tests: virtual boards, and a copy of the firmware to edit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.board.fixtures import ROOT, runtime_dir, vboard  # noqa: F401


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A copy of the committed firmware_py to edit (work in progress in the tree stays out)."""
    archive = subprocess.run(
        ["git", "archive", "HEAD", "firmware_py"], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode == 0:
        subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    else:
        shutil.copytree(
            ROOT / "firmware_py",
            tmp_path / "firmware_py",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    return tmp_path / "firmware_py"
