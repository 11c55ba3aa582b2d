"""The real build: MicroPython's rp2 port with farside frozen in, from the MicroPython source
kept beside the project, with Debian's Arm toolchain. Slow (a few minutes on 2 cores, much
less when the build folder in the user's cache is reused); skipped without the toolchain or
the source, except under CI, where their absence is a failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.cli import main
from hil.firmware import build as build_mod
from hil.firmware.frozen import FROZEN_RECORD, local_sources, source_digest
from hil.firmware.uf2 import FAMILY_RP2040, FLASH_BASE, parse_uf2, uf2_image
from tests.conftest import need
from tests.firmware_build.conftest import ROOT, STOCK_UF2

# The rp2 port's filesystem starts 0xA0000 into a Pico's flash: the firmware must end before.
FS_OFFSET = 0xA0000


def _farside_modules() -> set[str]:
    """What firmware_py/manifest.py freezes: every firmware module and the board loader."""
    found = {p.relative_to(ROOT).as_posix() for p in (ROOT / "firmware_py").rglob("*.py")}
    found.discard("firmware_py/manifest.py")
    return found | {"boards/__init__.py"}


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_pico_firmware_with_farside_frozen_in(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need(shutil.which("arm-none-eabi-gcc") is not None, "no arm-none-eabi-gcc (apt-get install "
         + build_mod.TOOLCHAIN_PACKAGES + ")")
    source = os.environ.get(build_mod.SOURCE_ENV) or str(build_mod.DEFAULT_SOURCE)
    need(Path(source).exists(), f"no MicroPython source at {source}")

    out = tmp_path / "farside-pico.uf2"
    started = time.monotonic()
    code = main(["firmware", "build", "--board", "pico", "--out", str(out), "--json"])
    seconds = time.monotonic() - started
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    with capsys.disabled():
        print(f"\nfirmware build: {seconds:.0f} s, {result['size']:,} octets, "
              f"{result['frozen_modules']} frozen modules ({result['farside_modules']} farside's)")

    data = out.read_bytes()
    assert result["uf2"] == str(out.resolve())
    assert result["size"] == len(data)
    assert result["family_id"] == "0xE48BFF56"
    assert result["micropython_version"] == "1.28.0"
    blocks = parse_uf2(data)
    assert {b.family_id for b in blocks} == {FAMILY_RP2040}
    image = uf2_image(data)
    assert image.base_addr == FLASH_BASE
    # bigger than stock MicroPython (farside's bytecode is in it), and clear of the filesystem
    if STOCK_UF2.is_file():
        stock = uf2_image(STOCK_UF2.read_bytes())
        assert len(image.data) > len(stock.data) + 20_000
        assert image.data[:256] == stock.data[:256]  # the same second-stage bootloader
    assert len(image.data) <= FS_OFFSET

    # every module that firmware_py/manifest.py names is frozen, and its name is in flash;
    # so is the build's record of them: the digest `farside flash` compares with its sources
    expected = _farside_modules() | {FROZEN_RECORD}
    assert set(result["frozen"]) >= expected
    assert result["farside_modules"] == len(expected)
    assert result["frozen_hash"] == source_digest(local_sources(ROOT / "firmware_py", ROOT / "boards"))
    assert result["frozen_hash"].encode() in image.data
    assert {"asyncio/core.py", "rp2.py", "_boot.py"} <= set(result["frozen"])  # the port's own
    for name in expected:
        assert name.encode() + b"\0" in image.data, name

    # the UF2 is what MicroPython's own converter makes of the same firmware.bin
    tree = Path(result["source"])
    firmware_bin = tree / "ports" / "rp2" / "build-farside-RPI_PICO" / "firmware.bin"
    assert firmware_bin.read_bytes() == image.data[: firmware_bin.stat().st_size]
    ref = tmp_path / "ref.uf2"
    subprocess.run(
        [sys.executable, str(tree / "tools" / "uf2conv.py"), "-b", "0x10000000", "-f", "0xE48BFF56",
         "-c", "-o", str(ref), str(firmware_bin)],
        check=True, capture_output=True, timeout=120,
    )
    assert ref.read_bytes() == data
