"""`farside keys rotate` end to end: a rover on a pty with a board's own keys, the key changed
over the link (KEY_OTAR under the master key, SA_REKEY), the key file updated, and a new
session commanding under the new key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tty
from pathlib import Path

import pytest

from hil.cli import main
from hil.gs.keys import board_key_path
from hil.gs.session import Session
from protocols.sdls import KeyStore
from tests.gs.rover_pty import ROOT, prepare_root


@pytest.fixture
def board_rover(tmp_path: Path):
    """A rover on a pty whose flash holds the keys of board `rot1` (farside keys new)."""
    assert main(["keys", "new", "--board", "rot1"]) == 0
    root = prepare_root(tmp_path / "rover")
    shutil.copy(board_key_path("rot1"), root / "keys.json")
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.gs.rover_pty", str(root), str(master)],
        cwd=ROOT, pass_fds=[master], stdout=subprocess.DEVNULL, stderr=open(root / "rover.log", "wb"),
    )
    os.close(slave)
    os.close(master)
    try:
        yield path
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_keys_rotate_changes_the_key_over_the_link_and_commanding_continues(board_rover: str, tmp_path: Path,
                                                                            capsys) -> None:
    before = KeyStore.load(board_key_path("rot1")).sa(1)
    assert before is not None
    code = main(["keys", "rotate", "--link", board_rover, "--keys", "rot1", "--timeout", "30",
                 "--archive-root", str(tmp_path / "archive")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "key 2 in use" in out
    after = KeyStore.load(board_key_path("rot1")).sa(1)
    assert after is not None and after.key_id == 2 and after.key != before.key and after.suite == before.suite
    assert not board_key_path("rot1").with_name("rot1.json.pending").exists()
    with Session.open(board_rover, keys="rot1", archive_root=tmp_path / "archive") as s:
        s.check_dictionary(30)
        s.wait_verification(s.send_command("PING"), 60)
    # the old key no longer commands the rover
    old = tmp_path / "old.json"
    old.write_text(json.dumps(KeyStore(sas={1: before}).to_json()))
    with Session.open(board_rover, keys=old, archive_root=tmp_path / "archive") as s:
        s.check_dictionary(30)
        track = s.send_command("PING")
        with pytest.raises(Exception, match="timed out|not accepted"):
            s.wait_verification(track, 8)


def test_keys_rotate_refuses_the_dev_keys(capsys) -> None:
    assert main(["keys", "rotate", "--link", "loop://"]) == 2
    assert "not the dev keys" in capsys.readouterr().err
