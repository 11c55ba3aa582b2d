"""firmware_py/manifest.py (for freezing farside into a MicroPython image) names every
firmware module, and the flash image leaves the manifest itself out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.flash.image import compile_sources

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "firmware_py" / "manifest.py"


def _frozen() -> tuple[dict[str, Any], set[str]]:
    """Run the manifest with stand-ins for MicroPython's manifest functions: its metadata
    and the repository-relative paths of the files it freezes."""
    meta: dict[str, Any] = {}
    found: set[str] = set()

    def metadata(**kw: Any) -> None:
        meta.update(kw)

    def package(path: str, files: tuple[str, ...] | None = None, base_path: str = ".", opt: Any = None) -> None:
        base = (MANIFEST.parent / base_path).resolve()
        assert files, "every file listed: the manifest is the freeze list"
        for f in files:
            p = base / path / f
            assert p.is_file(), p
            found.add(p.relative_to(ROOT).as_posix())

    exec(compile(MANIFEST.read_text(), str(MANIFEST), "exec"), {"metadata": metadata, "package": package})
    return meta, found


def test_manifest_freezes_every_firmware_module_and_the_board_loader() -> None:
    meta, frozen = _frozen()
    tree = {p.relative_to(ROOT).as_posix() for p in (ROOT / "firmware_py").rglob("*.py")}
    tree.discard("firmware_py/manifest.py")
    tree.add("boards/__init__.py")
    assert frozen == tree
    version = (ROOT / "firmware_py" / "version.py").read_text()
    major, minor, patch = (meta["version"].split(".") + ["", "", ""])[:3]
    for name, value in (("MAJOR", major), ("MINOR", minor), ("PATCH", patch)):
        assert f"{name} = const({value})" in version, (name, meta["version"])


def test_flash_image_leaves_the_manifest_out(tmp_path: Path) -> None:
    src = tmp_path / "firmware_py"
    src.mkdir()
    (src / "__init__.py").write_text("")
    (src / "version.py").write_text("MAJOR = 0\n")
    (src / "manifest.py").write_text(MANIFEST.read_text())
    assert sorted(compile_sources(src, "")) == ["firmware_py/__init__.mpy", "firmware_py/version.mpy"]
