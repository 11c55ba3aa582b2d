"""The ground-station guide's step-by-step procedure runs as written (the code block is read
out of hil/gs/README.md, not copied), and an `event` step sees the event its command caused
even though that event arrived while the `send` step waited for completion."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hil.cli import main

README = Path(__file__).resolve().parents[2] / "hil" / "gs" / "README.md"


def readme_procedure() -> str:
    """The code block that follows "A plain procedure is a list of steps:" in the guide."""
    text = README.read_text()
    m = re.search(r"A plain procedure is a list of steps:\s*\n```[a-z]*\n(.*?)```", text, re.S)
    assert m, "hil/gs/README.md lost its plain procedure example"
    return m.group(1)


@pytest.mark.slow  # the example drives 1 m at 200 m/h: 18 s of real time
def test_the_readme_procedure_runs_as_written(rover: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = readme_procedure()
    assert "event DRIVE_COMPLETED" in steps and "send DRIVE_DISTANCE" in steps
    path = tmp_path / "readme.proc"
    path.write_text(steps)
    rc = main(["gs", "run", str(path), "--link", rover, "--archive-root", str(tmp_path / "archive")])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    n_steps = len([line for line in steps.splitlines() if line.split("#", 1)[0].strip()])
    assert out.count("\nok   ") + out.startswith("ok   ") == n_steps
    assert "procedure readme.proc: all steps passed" in out
    # the event step's detail reads in metres and degrees
    assert re.search(r"event DRIVE_COMPLETED timeout=5 +-> drive DISTANCE completed: 0\.9\d* m, heading -?[\d.]+ deg", out), out


def test_event_steps_search_from_the_latest_send_each_event_once(
    rover: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "modes.proc"
    path.write_text(
        "send MODE_SET mode=DRIVE\n"
        "event MODE_CHANGE timeout=5      # arrived before this step began\n"
        "send MODE_SET mode=STANDBY\n"
        "event MODE_CHANGE timeout=5\n"
        "event MODE_CHANGE timeout=1      # one command, one mode change: no second one\n"
    )
    rc = main(["gs", "run", str(path), "--link", rover, "--archive-root", str(tmp_path / "archive")])
    out, err = capsys.readouterr()
    assert rc == 6, out + err  # the last step timed out
    lines = out.splitlines()
    assert lines[1].startswith("ok   modes.proc:2:") and "mode STANDBY -> DRIVE (COMMAND)" in lines[1]
    assert lines[3].startswith("ok   modes.proc:4:") and "mode DRIVE -> STANDBY (COMMAND)" in lines[3]
    assert lines[4].startswith("FAIL modes.proc:5:")
    assert err.count("\n") == 1 and "event MODE_CHANGE: expected anything within 1 s" in err


def test_a_python_procedure_awaits_an_event_from_its_command(rover: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "modes.py"
    path.write_text(
        "gs.send_and_assert_command('MODE_SET', {'mode': 'DRIVE'})\n"
        "e = gs.await_event('MODE_CHANGE', 5, since=gs.command_mark)  # it came while the send waited\n"
        "assert e.args['to_mode'] == 3, e\n"
        "gs.send_and_assert_command('MODE_SET', {'mode': 'STANDBY'})\n"
        "e = gs.await_event('MODE_CHANGE', 5, since=gs.command_mark)\n"
        "assert e.args['to_mode'] == 2, e\n"
    )
    rc = main(["gs", "run", str(path), "--link", rover, "--archive-root", str(tmp_path / "archive")])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
