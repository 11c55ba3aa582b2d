"""A wall-clock ground session (`farside gs`) on a rover that reboots: the next frames carry
sequence numbers above the mark the rover restored, COP-1 resynchronises, commanding goes on
with no operator action; a second session on the same key starts above the first."""

from __future__ import annotations

import time
from pathlib import Path

from hil.gs.session import Session


def test_commanding_continues_after_a_commanded_reboot_and_a_new_session(rover_port: str, tmp_path: Path) -> None:
    with Session.open(rover_port, archive_root=tmp_path / "archive") as s:
        s.check_dictionary(30)
        s.wait_verification(s.send_command("PING"), 60)
        first_seq = s.security.seq
        boots = s.state.events.copy()
        s.send_command("REBOOT")
        t0 = time.monotonic()
        while not any(e.name == "BOOT" and e not in boots for e in s.state.events):
            assert time.monotonic() - t0 < 60.0, "no BOOT after REBOOT"
            time.sleep(0.1)
        s.wait_verification(s.send_command("PING"), 90)
        mark = s.state.sa_status[1][0]
        assert s.security.seq > mark >= first_seq - 1
        last = s.security.seq
    with Session.open(rover_port, archive_root=tmp_path / "archive") as s2:
        s2.check_dictionary(30)
        assert s2.security.seq > last  # persisted: never backwards across sessions
        s2.wait_verification(s2.send_command("PING"), 60)
