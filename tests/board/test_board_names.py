"""Boards started at the same moment in one runtime dir each get a name of their own, so
two boards never share a control socket: a reset, a stop or a power cut reaches the board it
was meant for. (Two starts at once used to choose the same free name, `sim0`: the second
supervisor took over the first one's control socket, and a test's reset went to another
test's board.)"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hil.board import VirtualBoard, list_boards, start_board
from hil.board.runtime import claim_name, name_held
from hil.errors import FarsideError

pytestmark = pytest.mark.micropython


def _start_at_once(micropython: str, tmp_path: Path, names: list[str | None]) -> list[VirtualBoard | Exception]:
    """start_board from one thread per name, released together."""
    gate = threading.Barrier(len(names))
    results: list[VirtualBoard | Exception] = [RuntimeError("not started")] * len(names)

    def start(i: int, name: str | None) -> None:
        gate.wait()
        try:
            results[i] = start_board(board="sim", name=name, flash_dir=tmp_path / f"flash{i}", micropython=micropython)
        except Exception as exc:  # noqa: BLE001 - the test looks at each outcome
            results[i] = exc

    threads = [threading.Thread(target=start, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_boards_started_at_once_get_names_and_control_sockets_of_their_own(
    micropython: str, tmp_path: Path
) -> None:
    results = _start_at_once(micropython, tmp_path, [None, None, None])
    boards = [b for b in results if isinstance(b, VirtualBoard)]
    try:
        assert len(boards) == 3, results
        assert len({b.name for b in boards}) == 3
        assert len({b.state.control for b in boards}) == 3
        assert len({b.port for b in boards}) == 3
        assert {b.name for b in list_boards()} == {b.name for b in boards}
        # each control socket is its own supervisor's: a reset reaches that board alone
        pids = [b.status()["pid"] for b in boards]
        assert all(b.status()["boots"] == 1 for b in boards)
        boards[0].reset()
        assert [b.status()["boots"] for b in boards] == [2, 1, 1]
        assert boards[0].status()["pid"] != pids[0] and [b.status()["pid"] for b in boards[1:]] == pids[1:]
    finally:
        for b in boards:
            b.stop()


def test_one_name_started_twice_at_once_runs_once_and_the_other_start_says_so(
    micropython: str, tmp_path: Path
) -> None:
    results = _start_at_once(micropython, tmp_path, ["rover", "rover"])
    boards = [b for b in results if isinstance(b, VirtualBoard)]
    errors = [e for e in results if not isinstance(e, VirtualBoard)]
    try:
        assert len(boards) == 1, results
        assert len(errors) == 1 and isinstance(errors[0], FarsideError)
        assert "virtual board rover is already running" in str(errors[0])
        assert "\n" not in str(errors[0])
        assert boards[0].status()["pid"] is not None
    finally:
        for b in boards:
            b.stop()
    assert not name_held("rover")  # a stopped board lets its name go


def test_a_held_name_is_skipped_when_the_name_is_chosen(micropython: str, tmp_path: Path) -> None:
    # a supervisor that has claimed sim0 but not yet published its state: the next start
    # chooses sim1 rather than a name another board holds
    fd = claim_name("sim0")
    try:
        assert name_held("sim0")
        board = start_board(board="sim", flash_dir=tmp_path / "flash", micropython=micropython)
        try:
            assert board.name == "sim1"
        finally:
            board.stop()
    finally:
        import os

        os.close(fd)
    assert not name_held("sim0")
