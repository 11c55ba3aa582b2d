"""Every sender of TC frames starts its security sequence from one shared clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hil.flash.link import command_bytes
from hil.gs.link import DEV_KEYS
from protocols.sdls import time_based_seq
from protocols.tc_frame import parse_tc_frame


@given(st.floats(1.6e9, 1.9e9), st.floats(0.1, 1e6))
def test_a_later_session_starts_above_an_earlier_one(t0: float, dt: float) -> None:
    a, b = time_based_seq(t0), time_based_seq(t0 + dt)
    if int((t0 + dt) * 10) >> 31 == int(t0 * 10) >> 31:  # no 31-bit wrap in between
        assert b >= a + int(dt * 10) - 1
    assert 1 <= a <= 0x7FFFFFFF and 1 <= b <= 0x7FFFFFFF


def test_flash_commands_start_above_a_ground_session_begun_before() -> None:
    ground_start = time_based_seq()
    stream = command_bytes(DEV_KEYS.read_bytes(), 200, 10)
    frame = parse_tc_frame(stream[2:], security=True)  # after the EB90 start sequence
    assert frame.sec_seq is not None and ground_start <= frame.sec_seq <= time_based_seq()
