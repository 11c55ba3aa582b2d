"""The F Prime style front door on a ground state fed frames: the checks GroundApi shares
with the HIL harness's RoverApi (hil.gs.api.FrontDoor), and its waiting on the wall clock."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hil.errors import FarsideError
from hil.gs.api import CheckFailed, GroundApi, equal_to, greater_than
from hil.gs.session import EXIT_TIMEOUT
from hil.gs.state import GroundState
from hil.gs.synth import frames_of
from tests.gs.test_export import M, TmPacketBuilder, _event, _hk_packet


def _builder() -> Any:
    return TmPacketBuilder(apid=M.tm_apid, clock=lambda: (100, 0))


def _feed(state: GroundState, packet: bytes) -> None:
    for f in frames_of(M, [packet], first_count=state.link.frames_ok):
        state.on_frame(f, 1000.0)


def test_assert_checks_what_arrived_and_await_waits_for_a_report_from_now_on() -> None:
    state = GroundState(M)
    b = _builder()
    _feed(state, _hk_packet(b, mode=2, x_m=1.0))
    api = GroundApi(state, default_timeout=5)
    assert api.assert_telemetry("mode", equal_to("standby")) == "STANDBY"
    with pytest.raises(CheckFailed, match=r"^telemetry x_m: expected > 2, latest is 1\.0$"):
        api.assert_telemetry("x_m", greater_than(2))
    # the value already matches, but await_ waits for a report arriving after the call
    with pytest.raises(CheckFailed, match=r"^telemetry mode: expected == STANDBY within 0\.2 s, latest is 'STANDBY'$") as exc:
        api.await_telemetry("mode", equal_to("STANDBY"), timeout=0.2)
    assert exc.value.exit_code == EXIT_TIMEOUT
    later = threading.Timer(0.05, _feed, (state, _hk_packet(b, mode=2, x_m=3.0)))
    later.start()
    try:
        assert api.await_telemetry("x_m", greater_than(2)) == pytest.approx(3.0)
    finally:
        later.join()


def test_events_are_searched_since_clear_histories_and_awaited_from_now() -> None:
    state = GroundState(M)
    b = _builder()
    api = GroundApi(state, default_timeout=5)
    _feed(state, _event(b, "HAZARD_TILT", 2150, 1600))
    assert api.assert_event("HAZARD_TILT", lambda a: a["pitch_cdeg"] == 2150).args["roll_cdeg"] == 1600
    api.clear_histories()
    with pytest.raises(CheckFailed, match=r"^event HAZARD_TILT: expected anything, not received \(latest: none\)$"):
        api.assert_event("HAZARD_TILT")
    with pytest.raises(CheckFailed, match=r"^event MODE_CHANGE: expected anything within 0\.1 s \(received: none\)$"):
        api.await_event("MODE_CHANGE", timeout=0.1)
    with pytest.raises(FarsideError, match="unknown event 'WARP'"):
        api.await_event("WARP")
    with pytest.raises(FarsideError, match="read-only"):
        api.send_command("PING")
