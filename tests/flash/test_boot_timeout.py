"""How long `farside flash` waits for the rover's BOOT event follows the board definition
(boards/<name>.json boot_timeout_s); --boot-timeout overrides it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import boards
from hil.board import VirtualBoard
from hil.errors import FarsideError
from hil.flash import FlashOptions, flash
from hil.flash import image as image_module
from hil.flash.install import boot_timeout
from tests.board.fixtures import ROOT


@pytest.mark.parametrize("board", ["pico", "pico_w", "pico2", "sim"])
def test_shipped_boards_give_their_boot_timeout(board: str) -> None:
    definition = json.loads((ROOT / "boards" / f"{board}.json").read_text())
    boards.validate(definition)
    assert boot_timeout(FlashOptions(board=board)) == definition["boot_timeout_s"]
    if definition["hal"] == "rp2":
        assert definition["boot_timeout_s"] >= 60  # an emulated RP2040 boots in about 18 s


@pytest.fixture
def board_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of boards/ that the flash tool reads instead."""
    target = tmp_path / "boards"
    shutil.copytree(ROOT / "boards", target, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(image_module, "BOARDS_DIR", target)
    return target


def _set(board_dir: Path, name: str, value: object) -> None:
    path = board_dir / f"{name}.json"
    definition = json.loads(path.read_text())
    definition["boot_timeout_s"] = value
    path.write_text(json.dumps(definition))


def test_value_comes_from_the_board_file_and_the_option_overrides_it(board_dir: Path) -> None:
    _set(board_dir, "pico", 42.5)
    assert boot_timeout(FlashOptions(board="pico")) == 42.5
    assert boot_timeout(FlashOptions(board="pico", boot_timeout_s=7)) == 7.0
    del_path = board_dir / "sim.json"
    definition = json.loads(del_path.read_text())
    del definition["boot_timeout_s"]
    del_path.write_text(json.dumps(definition))
    assert boot_timeout(FlashOptions(board="sim")) == 20.0  # the sim default


@pytest.mark.parametrize("value", ["soon", 0, -1, True, None])
def test_bad_value_in_the_board_file_is_one_line(board_dir: Path, value: object) -> None:
    _set(board_dir, "pico", value)
    with pytest.raises(
        FarsideError, match=r"^board definition pico\.json: expected boot_timeout_s"
    ):
        boot_timeout(FlashOptions(board="pico"))
    definition = json.loads((board_dir / "pico.json").read_text())
    with pytest.raises(boards.BoardError, match="boot_timeout_s"):
        boards.validate(definition)


@pytest.mark.parametrize("value", ["0", "-2", "soon"])
def test_bad_boot_timeout_option_is_one_line_and_exit_2(value: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hil.cli", "flash", "--port", "/dev/null", "--boot-timeout", value],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("farside: error: --boot-timeout: expected a positive number")


@pytest.mark.micropython
def test_flash_waits_as_long_as_the_board_file_says(
    board_dir: Path, vboard: VirtualBoard, src: Path
) -> None:
    _set(board_dir, "sim", 0.05)  # far too short for any boot
    with pytest.raises(FarsideError, match=r"expected the rover's BOOT event within 0\.05 s"):
        flash(FlashOptions(board="sim", port=vboard.port, source=src))
    report = flash(FlashOptions(board="sim", port=vboard.port, source=src, boot_timeout_s=15))
    assert report.boot_timeout_s == 15 and report.boot is not None


@pytest.mark.micropython
def test_a_boot_that_ends_at_the_repl_shows_the_whole_console_in_one_line(
    vboard: VirtualBoard, src: Path
) -> None:
    # The rover fails before its BOOT event: why is in the lines before the `>>>` (the
    # error used to show the last line alone, `>>>`, which says nothing).
    main_py = src / "main.py"
    text = main_py.read_text()
    head = "def main(root=\"\", board=None, link=None, seed=1, background=None, pending=b\"\"):\n"
    assert head in text
    main_py.write_text(text.replace(head, head + "    raise RuntimeError('broken before BOOT')\n", 1))
    with pytest.raises(FarsideError) as caught:
        flash(FlashOptions(board="sim", port=vboard.port, source=src, boot_timeout_s=3))
    message = str(caught.value)
    assert "\n" not in message
    assert "expected the rover's BOOT event within 3 s" in message
    assert "farside: escape window" in message and "RuntimeError: broken before BOOT" in message
    assert message.index("RuntimeError: broken before BOOT") < message.rindex(">>>")
    assert "board log:" in message
