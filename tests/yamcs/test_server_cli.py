"""`farside yamcs` bad input: one line `farside: error: ...` and a non-zero exit."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.yamcs.conftest import no_java_env


def _farside(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hil.cli", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def _one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("farside: error: ")
    assert "Traceback" not in r.stderr
    return lines[0]


def test_start_without_java_names_the_package_to_install(yamcs_folder: Path) -> None:
    r = _farside(["yamcs", "start", str(yamcs_folder)], env=no_java_env())
    line = _one_line_error(r)
    assert "no java on PATH or in $JAVA_HOME" in line and "openjdk-17-jre-headless" in line


def test_start_on_a_busy_http_port_is_one_line(yamcs_tools: None, yamcs_folder: Path) -> None:
    import json

    port = json.loads((yamcs_folder / "farside-yamcs.json").read_text())["http_port"]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        r = _farside(["yamcs", "start", str(yamcs_folder)])
    line = _one_line_error(r)
    assert f"HTTP port {port} (TCP) is busy" in line


def test_start_on_a_folder_that_was_never_initialised_is_one_line(tmp_path: Path) -> None:
    line = _one_line_error(_farside(["yamcs", "start", str(tmp_path)]))
    assert "not a farside Yamcs folder" in line and "farside yamcs init" in line


@pytest.mark.parametrize("args, message", [
    (["--http-port", "0"], "--http-port: expected a port 1..65535"),
    (["--arsn", "0"], "--arsn: expected 1..4294967295"),
])
def test_init_bad_options_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    line = _one_line_error(_farside(["yamcs", "init", str(tmp_path / "y"), *args]))
    assert message in line


def _keys_env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "FARSIDE_KEYS"}  # the dev keys are the setting
    env["FARSIDE_CONFIG_DIR"] = str(tmp_path / "config")
    return env


def test_fly_refuses_a_clear_folder_before_starting_anything(tmp_path: Path) -> None:
    """The rover fly starts authenticates every TC frame: a clear-mode Yamcs would see every
    command wait out its verifiers (minutes each); fly says so at once."""
    env = _keys_env(tmp_path)
    subprocess.run([sys.executable, "-m", "hil.cli", "yamcs", "init", str(tmp_path / "y"), "--clear"],
                   check=True, capture_output=True, env=env, timeout=60)
    line = _one_line_error(_farside(["yamcs", "fly", str(tmp_path / "y")], env=env))
    assert "clear mode, which the rover refuses" in line and "without --clear" in line
    assert not (tmp_path / "y" / "board-flash").exists()  # no board was started
    assert not list((tmp_path / "y").glob("relay.*"))


def test_fly_refuses_a_folder_keyed_for_other_keys_than_the_board_gets(tmp_path: Path) -> None:
    env = _keys_env(tmp_path)
    subprocess.run([sys.executable, "-m", "hil.cli", "keys", "new", "--board", "rover7"],
                   check=True, capture_output=True, env=env, timeout=60)
    subprocess.run([sys.executable, "-m", "hil.cli", "yamcs", "init", str(tmp_path / "y"), "--keys", "rover7"],
                   check=True, capture_output=True, env=env, timeout=60)
    line = _one_line_error(_farside(["yamcs", "fly", str(tmp_path / "y")], env=env))  # the dev keys
    assert "Yamcs holds another key for SA 1 than" in line and "dev" in line
    assert "farside yamcs init --keys" in line
    assert not (tmp_path / "y" / "board-flash").exists()
