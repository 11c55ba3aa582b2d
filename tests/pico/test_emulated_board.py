"""The emulated Pico as a user meets it: `farside board start --emulated`, the stock rp2
firmware booting, `mpremote` and `farside flash` over its USB CDC pty, littlefs that
survives a stop and start, resets (watchdog, RUN pin, power cut) with their reset cause.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.board import VirtualBoard, start_board
from hil.board.emulated import (
    RP2040_FAMILY,
    Uf2,
    find_rp2_firmware,
)
from hil.errors import FarsideError
from hil.flash import FlashOptions, flash
from tests.flash.test_escape_window import frame_with_ctrl_c, listen_arsn, reset_and_send
from tests.flash.test_flash import set_patch
from tests.pico.conftest import need_emulator

ROOT = Path(__file__).resolve().parents[2]
MPREMOTE = str(Path(sys.executable).parent / "mpremote")

pytestmark = pytest.mark.slow


def _mpremote(port: str, *args: str, timeout: float = 60, attempts: int = 3) -> str:
    """Run mpremote on the board; a board still re-enumerating after a reset gets retried."""
    for _ in range(attempts):
        done = subprocess.run([MPREMOTE, "connect", port, *args], capture_output=True, text=True, timeout=timeout)
        if done.returncode == 0:
            return done.stdout
    raise AssertionError(done.stderr[-500:])


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualBoard]:
    need_emulator()
    monkeypatch.setenv("FARSIDE_RUNTIME_DIR", str(tmp_path / "runtime"))
    vb = start_board(board="pico", flash_dir=tmp_path / "pico", emulated=True, pace="free")
    try:
        yield vb
    finally:
        vb.stop()


# ---- the firmware a user gives ---------------------------------------------------------------


def test_firmware_comes_from_the_option_then_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stock = find_rp2_firmware() if _have_firmware() else None
    with pytest.raises(FarsideError, match=r"no such file.*micropython.org/download/RPI_PICO"):
        find_rp2_firmware(tmp_path / "missing.uf2")
    monkeypatch.setenv("FARSIDE_RP2_FIRMWARE", str(tmp_path / "gone.uf2"))
    with pytest.raises(FarsideError, match=r"FARSIDE_RP2_FIRMWARE=.*no such file"):
        find_rp2_firmware()
    if stock is not None:
        monkeypatch.setenv("FARSIDE_RP2_FIRMWARE", str(stock))
        assert find_rp2_firmware() == stock
        assert find_rp2_firmware(stock) == stock


def test_no_firmware_anywhere_is_one_line_saying_where_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hil.board.emulated as emulated

    monkeypatch.delenv("FARSIDE_RP2_FIRMWARE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(emulated, "ROOT", tmp_path / "project")
    with pytest.raises(FarsideError) as err:
        find_rp2_firmware()
    assert "\n" not in str(err.value)
    assert "--firmware PATH" in str(err.value) and "RPI_PICO" in str(err.value)


def _uf2(family: int, payload: bytes = bytes(256), addr: int = 0x10000000) -> bytes:
    import struct

    block = struct.pack("<8I", 0x0A324655, 0x9E5D5157, 0x2000, addr, 256, 0, 1, family)
    return block + payload.ljust(476, b"\0") + struct.pack("<I", 0x0AB16F30)


def test_a_uf2_for_another_chip_is_refused_with_one_line(tmp_path: Path) -> None:
    rp2350 = tmp_path / "RPI_PICO2.uf2"
    rp2350.write_bytes(_uf2(0xE48BFF59))
    with pytest.raises(FarsideError, match=r"is for RP2350.*expected RP2040"):
        Uf2.read(rp2350)
    junk = tmp_path / "junk.uf2"
    junk.write_bytes(b"not a uf2")
    with pytest.raises(FarsideError, match="expected a UF2 file"):
        Uf2.read(junk)
    ok = tmp_path / "ok.uf2"
    ok.write_bytes(_uf2(RP2040_FAMILY, b"\x01\x02"))
    assert Uf2.read(ok).blocks[0][0] == 0x10000000
    env = dict(os.environ, FARSIDE_RUNTIME_DIR=str(tmp_path / "runtime"))
    done = subprocess.run(
        [sys.executable, "-m", "hil.cli", "board", "start", "--emulated", "--firmware", str(rp2350)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and "RP2350" in done.stderr, done.stderr


def _have_firmware() -> bool:
    try:
        find_rp2_firmware()
    except FarsideError:
        return False
    return True


# ---- the board ------------------------------------------------------------------------------


def test_stock_firmware_boots_and_mpremote_works_on_it(board: VirtualBoard) -> None:
    out = _mpremote(board.port, "exec", "import sys,gc,machine; print(sys.implementation._machine, gc.mem_free(), machine.freq(), machine.unique_id().hex())")
    machine, free, freq, uid = out.rsplit(maxsplit=3)
    assert machine == "Raspberry Pi Pico with RP2040"
    assert 230_000 < int(free) < 250_000  # a Pico's heap at the prompt
    assert int(freq) == 125_000_000
    assert uid.upper() == board.serial_number  # the flash's unique id is the USB serial number
    # littlefs writes and renames work on the emulated flash chip
    _mpremote(board.port, "exec", "f=open('a.txt','w'); f.write('kept'); f.close(); import os; os.rename('a.txt','b.txt')")
    assert "b.txt" in _mpremote(board.port, "fs", "ls")


def test_flash_survives_stop_and_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need_emulator()
    monkeypatch.setenv("FARSIDE_RUNTIME_DIR", str(tmp_path / "runtime"))
    with start_board(board="pico", flash_dir=tmp_path / "pico", emulated=True, pace="free") as vb:
        _mpremote(vb.port, "exec", "f = open('note.txt', 'w'); f.write('across a stop'); f.close()")
    assert (tmp_path / "pico" / "flash.img").stat().st_size == 2 * 1024 * 1024
    with start_board(board="pico", flash_dir=tmp_path / "pico", emulated=True, pace="free") as vb:
        assert _mpremote(vb.port, "exec", "print(open('note.txt').read())").strip() == "across a stop"


def test_resets_report_their_cause_and_keep_the_flash(board: VirtualBoard) -> None:
    assert _mpremote(board.port, "exec", "import machine; print(machine.reset_cause() == machine.PWRON_RESET)").strip() == "True"
    _mpremote(board.port, "exec", "f = open('r.txt', 'w'); f.write('x'); f.close()")
    # machine.reset() goes through the watchdog: rp2 reports WDT_RESET, the flash stays
    _mpremote(board.port, "exec", "--no-follow", "import machine; machine.reset()")
    out = _mpremote(board.port, "exec", "import machine, os; print(machine.reset_cause() == machine.WDT_RESET, 'r.txt' in os.listdir())")
    assert out.split() == ["True", "True"]
    # a started watchdog that nobody feeds resets the chip
    boots = board.status()["boots"]
    _mpremote(board.port, "exec", "--no-follow", "import machine; machine.WDT(timeout=200)")
    out = _mpremote(board.port, "exec", "import machine; print(machine.reset_cause() == machine.WDT_RESET)")
    assert out.strip() == "True"
    assert board.status()["boots"] == boots + 1
    # the RUN pin and a power cycle are power-on resets
    board.reset()
    assert _mpremote(board.port, "exec", "import machine; print(machine.reset_cause() == machine.PWRON_RESET)").strip() == "True"
    board.power_cycle()
    assert _mpremote(board.port, "exec", "print(open('r.txt').read())").strip() == "x"


def test_farside_flash_puts_the_rover_on_it_then_keeps_it_current(board: VirtualBoard, src: Path) -> None:
    v1 = set_patch(src, 1)
    first = flash(FlashOptions(board="pico", port=board.port, source=src))
    assert first.boot is not None and first.boot.version == v1
    assert "rp2" in first.micropython or "RP2040" in first.micropython or first.micropython
    # flashing a board whose rover runs (Ctrl-C is off: ENTER_REPL, a reset, the REPL)
    again = flash(FlashOptions(board="pico", port=board.port, source=src))
    assert again.plan.up_to_date and again.boot is not None
    v2 = set_patch(src, 2)
    changed = flash(FlashOptions(board="pico", port=board.port, source=src))
    assert changed.boot is not None and changed.boot.version == v2 != v1
    assert changed.plan.staging != first.plan.staging
    assert len(changed.plan.paths("upload")) >= 1
    # At the next boot, a frame the ground sends in main.py's escape window (a COP-1
    # retransmission after a brown-out, say) with 0x03 in its MAC: the rover starts and runs
    # it (ENTER_REPL here, so the board ends at the REPL by the rp2 way), where Ctrl-C on the
    # chip's USB had stopped it before it started (tests/flash/test_escape_window.py).
    seen = reset_and_send(board, frame_with_ctrl_c(listen_arsn(board)), limit_s=60.0)
    assert b"stopped at the REPL" not in seen, seen[-300:]
    assert b"farside: REPL (ENTER_REPL)" in seen, seen[-300:]


def test_a_power_cut_mid_write_leaves_a_filesystem_that_mounts(board: VirtualBoard, tmp_path: Path) -> None:
    _mpremote(board.port, "exec", "f = open('old.txt', 'w'); f.write('before'); f.close()")
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 64)  # 16 KB: the cut lands in the middle of the copy
    board.cut_power_after(6000, then="off")
    try:  # the board goes dark mid-copy: mpremote waits for an answer that never comes
        subprocess.run([MPREMOTE, "connect", board.port, "fs", "cp", str(big), ":big.bin"], capture_output=True, timeout=8)
    except subprocess.TimeoutExpired:
        pass
    assert board.status()["power"] == "off"
    board.power_on()
    out = _mpremote(board.port, "exec", "import os; print(open('old.txt').read(), 'big.bin' in os.listdir() and os.stat('big.bin')[6] or 0)")
    before, size = out.split()
    assert before == "before"
    assert int(size) < big.stat().st_size  # the copy was cut, the filesystem was not
    _mpremote(board.port, "fs", "cp", str(big), ":big.bin")  # and takes the next write whole
    assert _mpremote(board.port, "exec", "import os; print(os.stat('big.bin')[6])").strip() == str(big.stat().st_size)


def test_flash_follows_a_pico_that_re_enumerates_on_reset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, src: Path) -> None:
    need_emulator()
    monkeypatch.setenv("FARSIDE_RUNTIME_DIR", str(tmp_path / "runtime"))
    with start_board(board="pico", flash_dir=tmp_path / "pico", emulated=True, pace="free", reenumerate=True) as vb:
        first = flash(FlashOptions(board="pico", port=vb.port, source=src))
        assert first.boot is not None
        old_port = vb.status()["port"]
        replugs = vb.status()["replugs"]
        # the rover runs: the tool's ENTER_REPL resets the chip, its USB comes back on a new port
        again = flash(FlashOptions(board="pico", port=old_port, source=src))
        assert again.boot is not None and again.boot.boot_count >= 1
        assert again.attach == "enter_repl"
        assert vb.status()["replugs"] > replugs  # the port it was given vanished under it


def test_a_node_that_is_not_there_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hil.board.emulated import find_node

    monkeypatch.setenv("FARSIDE_NODE", str(tmp_path / "no-node"))
    with pytest.raises(FarsideError, match=r"FARSIDE_NODE=.*expected the Node.js executable"):
        find_node()
    monkeypatch.delenv("FARSIDE_NODE")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FarsideError, match=r"needs Node.js 18 or newer"):
        find_node()


def test_inject_puts_a_plant_fault_at_the_pins_through_the_control_socket(board: VirtualBoard) -> None:
    # a brown-out at the supply pins is a power-on reset of the chip (after a watchdog one)
    _mpremote(board.port, "exec", "--no-follow", "import machine; machine.reset()")
    assert _mpremote(board.port, "exec", "import machine; print(machine.reset_cause() == machine.WDT_RESET)").strip() == "True"
    board.inject("BROWN_OUT", 0, 0.0)
    assert _mpremote(board.port, "exec", "import machine; print(machine.reset_cause() == machine.PWRON_RESET)").strip() == "True"
    board.inject("JAM", 3, 1.0)  # by name or by the dictionary's code
    board.inject(1, 3, -1.0)
    for fault, wheel, why in (("JAM", 9, "refused JAM wheel 9"), ("HANG_TASK", 1, "firmware fault"), (99, 1, "sim_fault code")):
        with pytest.raises(FarsideError, match=why) as err:
            board.inject(fault, wheel)
        assert "\n" not in str(err.value)
