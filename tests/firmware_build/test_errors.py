"""`farside firmware build` fails with one line and a non-zero exit, never a traceback: a
missing toolchain names the Debian packages, a missing or wrong source says so, a failed
make points at its log. Fake tools on PATH stand in for the real ones (fast)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from hil.cli import main
from hil.firmware import build as build_mod

PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"


def _tool(bin_dir: Path, name: str, body: str = "exit 0") -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


# A toolchain whose gcc finds both C libraries (it prints an existing absolute path).
GCC_OK = 'case "$*" in *print-file-name*) echo /bin/sh;; esac'


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An otherwise empty PATH holding fake arm-none-eabi-gcc, make, cmake and cc."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _tool(bin_dir, "arm-none-eabi-gcc", GCC_OK)
    for name in ("make", "cmake", "cc"):
        _tool(bin_dir, name)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv(build_mod.SOURCE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return bin_dir


def _fake_tree(root: Path, submodules: tuple[str, ...] = ("lib/pico-sdk", "lib/tinyusb", "lib/micropython-lib")) -> Path:
    """A folder shaped like a MicroPython tree (nothing in it builds)."""
    for rel in ("mpy-cross/Makefile", "ports/rp2/Makefile", "tools/makemanifest.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    (root / "py").mkdir(parents=True, exist_ok=True)
    (root / "py" / "mpconfig.h").write_text(
        "#define MICROPY_VERSION_MAJOR 1\n#define MICROPY_VERSION_MINOR 28\n#define MICROPY_VERSION_MICRO 0\n"
    )
    for board in ("RPI_PICO", "RPI_PICO2", "RPI_PICO_W"):
        (root / "ports" / "rp2" / "boards" / board).mkdir(parents=True, exist_ok=True)
    for sub in submodules:
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub / "README.md").write_text("")
    (root / "tools" / "manifestfile.py").write_text(FAKE_MANIFESTFILE)
    return root


# MicroPython's manifest reader, as far as firmware_py/manifest.py uses it (the build reads
# the manifest with the tree's own reader to record what it freezes).
FAKE_MANIFESTFILE = """\
import collections, os
MODE_FREEZE = 1
Entry = collections.namedtuple("Entry", "full_path target_path")
class ManifestFile:
    def __init__(self, mode, path_vars=None):
        self._files = []
    def files(self):
        return self._files
    def execute(self, path):
        base = os.path.dirname(path)
        def package(name, files=(), base_path="."):
            for f in files:
                self._files.append(Entry(os.path.join(base, base_path, name, f), name + "/" + f))
        with open(path) as f:
            exec(f.read(), {"metadata": lambda **kw: None, "package": package})
"""


def _error(capsys: pytest.CaptureFixture[str], argv: list[str], tmp_path: Path) -> str:
    """Run the command, check it failed with exactly one error line; that line."""
    code = main(["firmware", "build", "--out", str(tmp_path / "out.uf2"), *argv])
    err = capsys.readouterr().err
    assert code != 0, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("farside: error: ")]
    assert len(errors) == 1, err
    assert err.rstrip("\n").splitlines()[-1] == errors[0]
    assert not (tmp_path / "out.uf2").exists()
    return errors[0]


def test_missing_toolchain_names_the_debian_packages(
    tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tools / "arm-none-eabi-gcc").unlink()
    line = _error(capsys, ["--micropython-src", str(_fake_tree(tmp_path / "mp"))], tmp_path)
    assert "arm-none-eabi-gcc not found" in line and PACKAGES in line


@pytest.mark.parametrize(
    ("lib", "package"),
    [("libc.a", "libnewlib-arm-none-eabi"), ("libstdc++.a", "libstdc++-arm-none-eabi-newlib")],
)
def test_missing_c_library_names_its_package(
    tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], lib: str, package: str
) -> None:
    # gcc prints the bare file name when it cannot find the library
    _tool(tools, "arm-none-eabi-gcc", f'case "$*" in *={lib}*) echo {lib};; *print-file-name*) echo /bin/sh;; esac')
    line = _error(capsys, ["--micropython-src", str(_fake_tree(tmp_path / "mp"))], tmp_path)
    assert f"{lib} for arm-none-eabi not found: apt-get install {package}" in line


@pytest.mark.parametrize("tool", ["make", "cmake"])
def test_missing_make_or_cmake(
    tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tool: str
) -> None:
    (tools / tool).unlink()
    line = _error(capsys, ["--micropython-src", str(_fake_tree(tmp_path / "mp"))], tmp_path)
    assert f"{tool} not found: install it (apt-get install {tool})" in line


def test_missing_source_folder(tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _error(capsys, ["--micropython-src", str(tmp_path / "nowhere")], tmp_path)
    assert "MicroPython source not found (--micropython-src)" in line and "nowhere" in line


def test_missing_source_from_the_environment(
    tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(build_mod.SOURCE_ENV, str(tmp_path / "gone.tgz"))
    line = _error(capsys, [], tmp_path)
    assert f"MicroPython source not found (${build_mod.SOURCE_ENV})" in line


def test_no_source_at_all(
    tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build_mod, "DEFAULT_SOURCE", tmp_path / "absent.tgz")
    line = _error(capsys, [], tmp_path)
    assert "no MicroPython source: pass --micropython-src" in line


def test_folder_that_is_not_micropython(tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "src").mkdir()
    line = _error(capsys, ["--micropython-src", str(tmp_path / "src")], tmp_path)
    assert "not a MicroPython source tree (no py/mpconfig.h)" in line


def test_tree_without_the_rp2_submodules(tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = _fake_tree(tmp_path / "mp", submodules=("lib/tinyusb", "lib/micropython-lib"))
    line = _error(capsys, ["--micropython-src", str(tree)], tmp_path)
    assert "lacks the submodule lib/pico-sdk" in line


def test_pico_w_needs_the_wireless_submodules(tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _error(capsys, ["--board", "pico_w", "--micropython-src", str(_fake_tree(tmp_path / "mp"))], tmp_path)
    assert "lacks the submodule lib/cyw43-driver that RPI_PICO_W needs" in line


def test_tarball_that_is_not_micropython(tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tgz = tmp_path / "other.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        info = tarfile.TarInfo("README")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"hello"))
    line = _error(capsys, ["--micropython-src", str(tgz), "--build-dir", str(tmp_path / "b")], tmp_path)
    assert "not a MicroPython source tree" in line
    assert (tmp_path / "b" / "README").is_file()  # unpacked into the build folder


def test_file_that_is_no_tarball(tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "src.tgz"
    junk.write_bytes(b"not a tarball")
    line = _error(capsys, ["--micropython-src", str(junk)], tmp_path)
    assert "neither a folder nor a tarball" in line


@pytest.mark.parametrize(("board", "message"), [("sim", "virtual board"), ("uno", "unknown board 'uno'")])
def test_boards_without_a_firmware_build(
    tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], board: str, message: str
) -> None:
    line = _error(capsys, ["--board", board], tmp_path)
    assert message in line


def test_failed_make_points_at_its_log(tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _tool(tools, "make", 'case "$*" in *mpy-cross*) exit 0;; esac\necho "CC foo.c"\necho "foo.c:1:2: error: boom" >&2\nexit 2')
    tree = _fake_tree(tmp_path / "mp")
    line = _error(capsys, ["--micropython-src", str(tree)], tmp_path)
    log = tree / "ports" / "rp2" / "build-farside-RPI_PICO" / "farside-build.log"
    assert "build failed: MicroPython 1.28.0 for RPI_PICO" in line
    assert "make exited 2 (foo.c:1:2: error: boom)" in line
    assert line.endswith(f"full log: {log}")
    assert "foo.c:1:2: error: boom" in log.read_text()


def test_make_that_leaves_no_firmware(tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = _fake_tree(tmp_path / "mp")
    line = _error(capsys, ["--micropython-src", str(tree)], tmp_path)
    assert "make made no firmware.bin" in line


def test_tarball_is_unpacked_once_and_reused(tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = _fake_tree(tmp_path / "mp")
    tgz = tmp_path / "mp.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(tree, arcname="micropython-1.28.0")
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "farside" / "micropython"
    for run in range(2):
        line = _error(capsys, ["--micropython-src", str(tgz)], tmp_path)
        assert "make made no firmware.bin" in line
        (folder,) = [p for p in cache.iterdir() if p.is_dir()]
        if run == 0:
            (folder / "kept").write_text("")  # survives only if the second build reuses the folder
    assert (folder / "kept").is_file()
    assert folder.name.startswith("mp-")
    assert (folder / "micropython-1.28.0" / "ports" / "rp2" / "build-farside-RPI_PICO" / "farside-build.log").is_file()
