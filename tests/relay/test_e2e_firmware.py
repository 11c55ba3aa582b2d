"""End to end through the relay with the rover firmware, in virtual time: ground station
(FOP-1, SDLS) -> relay (`harsh`: bit errors, bursts, loss, duplication, an outage) ->
rover firmware on CPython (deframer, SDLS, FARM-1, dispatcher) -> TM with CLCW -> relay
-> ground. A 100-command sequence arrives complete, in order, once; nothing corrupted is
ever accepted; the rover never crashes."""

from __future__ import annotations

import asyncio
from typing import Any

from hil.mission import loop as mission_loop
from protocols.cop1 import CommandState

RETRIEVE_SERVICE = 15  # PUS service of TM_RETRIEVE (the TC secondary header's second octet)


def test_100_commands_under_harsh_reach_the_firmware_complete_and_in_order() -> None:
    loop = mission_loop.WholeLoop(mission_loop.LoopConfig(seed=3, relay="harsh", archive=False))
    try:
        loop.advance(5.0)  # boot, first CLCW, AD service up
        assert loop.rover is not None
        received: list[bytes] = []
        link = loop.rover.link
        deliver = link.on_packet

        def spy(buf: Any, start: int, end: int) -> None:
            received.append(bytes(buf[start:end]))
            deliver(buf, start, end)

        link.on_packet = spy
        tracks = [loop.ground.send("PING") for _ in range(100)]

        async def all_done() -> None:
            while not all(t.fop is not None and t.fop.done for t in tracks):
                await asyncio.sleep(5.0)
            await asyncio.sleep(10.0)  # the last verification reports come down

        loop.run(asyncio.wait_for(all_done(), 5000.0))
        relay = loop.relay
        assert relay is not None
        up = relay.uplink.stats
        assert up.frames_corrupted > 0 and up.frames_lost > 0 and up.frames_duplicated > 0
        assert relay.downlink.stats.frames_corrupted > 0
        assert loop.now() > 300  # went through the relay outage (240-300 s)
        # complete, in order, exactly once, and byte for byte what the ground built; the
        # ground's own packet-store requests (TM_RETRIEVE, PUS service 15, Type-BD) go
        # between them as the downlink loses frames
        operator = [p for p in received if p[7] != RETRIEVE_SERVICE]
        assert operator == [t.packet for t in tracks]
        assert len(received) > len(operator)  # harsh loses TM: the ground asked for some back
        # acknowledged by the CLCW, or verified by its reports (the ground's command log marks those)
        done = (CommandState.ACKNOWLEDGED, CommandState.VERIFIED)
        assert all(t.fop is not None and t.fop.state in done for t in tracks)
        assert loop.ground.fop.stats.ad_retransmitted > 0
        # the rover verified them (PUS service 1) and never rebooted
        # (TM frames are lost and duplicated on the way down too: a few reports go missing
        # or arrive twice; the uplink, which COP-1 protects, is exact)
        stages = [loop.ground.reports(t) for t in tracks]
        assert sum(1 for s in stages if "completed" in s) >= 90
        assert not any(st.endswith("failed") or st == "rejected" for s in stages for st in s)
        assert loop.boots == 1
        assert link.frames_ok >= 100
    finally:
        loop.close()
