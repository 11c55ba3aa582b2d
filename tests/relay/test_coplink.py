"""The COP-1 session over the relay uses the ground station's own link (one FOP-1, SDLS and
framing implementation on the ground)."""

from __future__ import annotations

from hil import vclock
from hil.gs.link import GroundLink
from hil.relay.coplink import run_commands


def test_cop1_session_ground_is_the_ground_station_link_and_its_frames_authenticate() -> None:
    cmds = [b"payload %d" % i for i in range(5)]
    ground, rover, _ = vclock.run(run_commands("lab", cmds, seed=0))
    assert isinstance(ground, GroundLink)
    assert rover.delivered == cmds and rover.rejected_auth == 0
    link = ground.state.link
    assert link.tc_frames_sent == len(ground.sent_frames) == len(cmds)
    assert link.frames_ok > 0 and link.frames_bad == 0
    assert link.clcw is not None and link.clcw.report_value == len(cmds)  # N(R): all acknowledged
