"""The harness tracks commands with the ground service's own code (hil.gs.commandlog), in
virtual time: the stages an operator sees in `gs send` and the web console."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.hil


@pytest.mark.farside_targets("virtual")
def test_harness_commands_carry_the_services_stages(rover):
    rover.send_and_assert_command("PING")
    rover.send_and_await_failure("PARAM_SET", param_id=3, value=45.0)
    entries = rover.ground.commands.latest(2)
    ping, bad = entries
    assert ping.name == "PING" and ping.outcome == "COMPLETED"
    assert [s.stage for s in ping.stages] == ["QUEUED", "SENT", "ACCEPTED", "STARTED", "COMPLETED"]
    assert all(b.t >= a.t for a, b in zip(ping.stages, ping.stages[1:], strict=False))
    assert bad.name == "PARAM_SET" and bad.outcome == "REJECTED"
    assert bad.stages[-1].detail == "OUT_OF_RANGE"
    assert not rover.ground.commands.pending()
