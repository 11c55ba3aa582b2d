"""Fixtures: the rover (CPython firmware, sim HAL) on a pty, and a session on it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.gs.rover_pty import start_rover


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def rover(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The slave path of a pty with the rover on its master."""
    root = tmp_path_factory.mktemp("rover")
    proc, path = start_rover(root)
    try:
        yield path
    finally:
        stop(proc)


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path, monkeypatch) -> None:
    """CLI runs that keep their default `--archive-root archive` write under tmp_path,
    not into the checkout; the ground-station service registry too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FARSIDE_GS_RUN", str(tmp_path / "gs-run"))
