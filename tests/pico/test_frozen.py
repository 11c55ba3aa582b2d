"""The frozen firmware: `farside firmware build --board pico` freezes the rover and a record of
its sources' digest into a UF2; the emulated Pico boots it; `farside flash` then installs no
modules while the board's frozen ones are the sources' (the frozen bytecode runs from flash,
not from the heap) and .mpy overrides when the sources have moved on.

The UF2 is built once per session into a temporary folder (seconds with the build folder kept
in the user's cache), or taken from ./build when it already holds these sources. Without the
Arm toolchain or MicroPython's source the slow tests skip, except under CI (CI=true), where
they fail. Boot time (chip seconds to the BOOT event) and the rover's free heap after boot
are printed for the frozen modules and for .mpy files.

The heap is HK free_heap, gc.mem_free(): the live heap less the garbage not yet collected, a
sawtooth of about a minute on an idle rover. It is compared at one defined point, the first
report after BOOT: the rover collects its boot's garbage as it boots, so that report is the
heap left to it less about a second's allocations (any other report is wherever the
collector's cycle happens to be).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hil.board import VirtualBoard, start_board
from hil.firmware.build import (
    BuildError,
    BuildOptions,
    build_firmware,
    check_tools,
    source_path,
    target_for,
)
from hil.firmware.frozen import FROZEN_RECORD, local_sources, source_digest
from hil.firmware.uf2 import uf2_image
from hil.flash import FlashOptions, FlashReport, build_image, flash
from hil.flash.image import BOARDS_DIR
from hil.flash.install import FROZEN_PATH, Flasher, choose_image
from hil.flash.ports import resolve_port
from tests.conftest import need
from tests.flash.test_flash import set_patch
from tests.pico.conftest import need_emulator

ROOT = Path(__file__).resolve().parents[2]
PREBUILT = ROOT / "build" / "farside-pico-frozen.uf2"


@dataclass(frozen=True)
class FrozenFirmware:
    """A frozen UF2 and a copy of the firmware_py it froze."""

    uf2: Path
    source: Path
    digest: str


def _copy_source(dest: Path) -> Path:
    shutil.copytree(ROOT / "firmware_py", dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture(scope="session")
def frozen_firmware(tmp_path_factory: pytest.TempPathFactory) -> FrozenFirmware:
    """The frozen UF2 of this checkout's firmware_py (./build's if it holds these sources)."""
    folder = tmp_path_factory.mktemp("frozen")
    source = _copy_source(folder / "firmware_py")
    digest = source_digest(local_sources(source, BOARDS_DIR))
    if PREBUILT.is_file() and digest.encode() in uf2_image(PREBUILT.read_bytes()).data:
        return FrozenFirmware(PREBUILT, source, digest)
    try:
        check_tools(target_for("pico"))
        src, how = source_path(None)
    except BuildError as exc:
        need(False, f"the frozen firmware cannot be built here: {exc}")
    need(src.exists(), f"the frozen firmware cannot be built here: no MicroPython source ({how}): {src}")
    result = build_firmware(BuildOptions(board="pico", out=folder / "farside-pico-frozen.uf2"))
    assert FROZEN_RECORD in result.frozen
    if result.frozen_hash != digest:
        pytest.fail("firmware_py changed while the frozen firmware was built: run the tests again")
    return FrozenFirmware(result.uf2, source, digest)


@pytest.fixture
def board(frozen_firmware: FrozenFirmware, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualBoard]:
    need_emulator()
    monkeypatch.setenv("FARSIDE_RUNTIME_DIR", str(tmp_path / "runtime"))
    vb = start_board(board="pico", flash_dir=tmp_path / "pico", emulated=True,
                     firmware=str(frozen_firmware.uf2), pace="free")
    try:
        yield vb
    finally:
        vb.stop()


def _on_board(port: str, code: str) -> str:
    """Stop the rover (Ctrl-C, else ENTER_REPL), soft reset (boot.py picks the slot) and run
    `code` in the raw REPL; its output."""
    flasher = Flasher(FlashOptions(board="pico", port=port))
    flasher.image = build_image("pico")  # its keys sign ENTER_REPL
    flasher.port = resolve_port(port)
    try:
        flasher.attach()
        flasher.fresh_heap()
        return flasher.call(code)
    finally:
        flasher._close()


# As main.py runs the rover: from the slot boot.py put first on sys.path, in that folder.
WHERE_CODE = """\
import os, sys
os.chdir(FARSIDE_SLOT)
import firmware_py.app, boards
print(FARSIDE_SLOT, firmware_py.app.__file__, boards.__file__, sorted(os.listdir()))
"""


def _modules(report: FlashReport) -> list[str]:
    return [f.path for f in report.plan.files if f.path.startswith(("firmware_py/", "boards/")) and f.action != "delete"]


def _measure(image: Path, firmware: Path, folder: Path) -> tuple[float, int]:
    """Boot a copy of a flashed flash image: chip seconds to the BOOT event, and free heap in
    the first HK report after it (the heap left to the rover: see the module docstring)."""
    from hil.mission.api import RoverApi
    from hil.mission.chip import ChipTarget

    target = ChipTarget(image, "none", 1, folder, firmware=firmware)
    try:
        api = RoverApi(target)
        api.await_event("BOOT", timeout=120)
        boot_s = target.now()
        heap = int(api.await_telemetry("free_heap", None, timeout=60))
    finally:
        target.close()
    return boot_s, heap


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_frozen_firmware_boots_and_flash_keeps_it_current(
    frozen_firmware: FrozenFirmware, board: VirtualBoard, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fw = frozen_firmware
    flash_img = Path(board.flash_dir) / "flash.img"
    # the frozen sources: nothing of firmware_py goes into the slot, the rover boots on them
    first = flash(FlashOptions(board="pico", port=board.port, source=fw.source))
    v0 = build_image("pico", fw.source).version
    assert first.frozen and first.frozen_hash == fw.digest
    assert _modules(first) == [], _modules(first)
    assert sorted(f.path for f in first.plan.files) == ["board.json", "dictionary.json", "keys.json"]
    assert first.imports == FROZEN_PATH  # checked on the chip before the slot was switched to
    assert first.boot is not None and first.boot.version == v0
    assert any("frozen" in n for n in first.notes)
    shutil.copyfile(flash_img, tmp_path / "frozen.img")
    # on the chip, as main.py imports them: the frozen modules, no firmware_py/ in the slot
    slot, app, boards_file, listing = _on_board(board.port, WHERE_CODE).split(maxsplit=3)
    assert app == "firmware_py/app.py" and boards_file == "boards/__init__.py", (app, boards_file)
    assert "firmware_py" not in listing and "boards" not in listing, listing

    # changed sources: the frozen firmware is older, the .mpy overrides go in and boot
    src = _copy_source(tmp_path / "src" / "firmware_py")
    v2 = set_patch(src, 2)
    assert v2 > v0
    changed = flash(FlashOptions(board="pico", port=board.port, source=src))
    assert not changed.frozen and changed.frozen_hash == fw.digest
    assert any("older than the sources" in n and ".mpy overrides installed" in n for n in changed.notes), changed.notes
    assert "firmware_py/app.mpy" in changed.plan.paths("upload")
    assert "boards/__init__.mpy" in changed.plan.paths("upload")
    assert changed.boot is not None and changed.boot.version == v2
    assert changed.plan.staging != first.plan.staging
    shutil.copyfile(flash_img, tmp_path / "mpy.img")
    slot2, app2, _, _ = _on_board(board.port, WHERE_CODE).split(maxsplit=3)
    assert app2 == f"{slot2}/firmware_py/app.mpy"

    # changed again (into the first slot), then back to the frozen sources: the slot that held
    # .mpy files loses them and their folders, and the frozen modules run again
    v3 = set_patch(src, 3)
    third = flash(FlashOptions(board="pico", port=board.port, source=src))
    assert third.boot is not None and third.boot.version == v3 and not third.frozen
    back = flash(FlashOptions(board="pico", port=board.port, source=fw.source))
    assert back.frozen and back.plan.staging == changed.plan.staging
    deleted = back.plan.paths("delete")
    assert "firmware_py/app.mpy" in deleted and "boards/__init__.mpy" in deleted
    assert back.imports == FROZEN_PATH
    assert back.boot is not None and back.boot.version == v0
    slot4, app4, _, listing4 = _on_board(board.port, WHERE_CODE).split(maxsplit=3)
    assert slot4 == slot2 and app4 == "firmware_py/app.py"
    assert "firmware_py" not in listing4 and "boards" not in listing4, listing4
    board.stop()

    # what freezing buys: boot time and the heap left to the rover, the same flight software
    frozen_boot, frozen_heap = _measure(tmp_path / "frozen.img", fw.uf2, tmp_path / "m-frozen")
    mpy_boot, mpy_heap = _measure(tmp_path / "mpy.img", fw.uf2, tmp_path / "m-mpy")
    with capsys.disabled():
        print(
            f"\nfrozen modules: BOOT {frozen_boot:.2f} chip s after power-on, free heap {frozen_heap:,} B, "
            f"flash {first.seconds:.1f} s ({first.payload_bytes:,} B of files)"
            f"\n.mpy files:     BOOT {mpy_boot:.2f} chip s after power-on, free heap {mpy_heap:,} B, "
            f"flash {changed.seconds:.1f} s ({changed.payload_bytes:,} B of files)"
        )
    assert frozen_heap > mpy_heap + 32_768  # about 56 KB of bytecode and constants left in flash
    assert frozen_boot < mpy_boot


def test_the_image_drops_the_modules_only_for_the_same_sources(tmp_path: Path) -> None:
    src = _copy_source(tmp_path / "firmware_py")
    image = build_image("pico", src)
    record = {"hash": image.frozen_digest, "version": image.version, "files": 30}
    same, note = choose_image(image, {"frozen": record, "shadow": []})
    assert same.frozen and not any(p.startswith(("firmware_py/", "boards/")) for p in same.files)
    assert set(same.files) == {"board.json", "dictionary.json", "keys.json"}
    assert same.manifest()["frozen"] == image.frozen_digest and "frozen into the firmware" in note
    # a folder at the filesystem's root would shadow the frozen package: overrides
    shadowed, note = choose_image(image, {"frozen": record, "shadow": ["firmware_py"]})
    assert shadowed is image and "shadow" in note
    # stock firmware (no record): the image as it is, no note
    assert choose_image(image, {"frozen": None}) == (image, "")
    # any change to a module (not only the version) is another digest
    (src / "drive.py").write_text((src / "drive.py").read_text() + "\n# changed\n")
    other = build_image("pico", src)
    assert other.frozen_digest != image.frozen_digest and other.version == image.version
    kept, note = choose_image(other, {"frozen": record, "shadow": []})
    assert kept is other and "built from other sources" in note and ".mpy overrides installed" in note
    # the version moved on: "older"
    newer = build_image("pico", src)
    newer.version += 1
    assert "older than the sources" in choose_image(newer, {"frozen": record})[1]
