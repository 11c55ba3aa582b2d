"""Certain command outcomes, judged by the rover's own execution log.

A hypothesis state machine commands the whole loop (ground, the harsh relay, the CPython
rover with the real FARM-1 and dispatcher) while it throws relay outages, rover reboots
(brown-outs) and transport reconnects at it, on top of the relay's own loss, corruption and
duplication. After a quiet spell the ground's command log must say, for every command:
COMPLETED if the rover ran it (and it ran it once), FAILED only if it was never sent (and
then it never ran), and UNKNOWN only where the evidence is really gone: the command ran but
a reboot wiped the packet store before its report could be retrieved, or it never ran.
No command ever runs twice.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from firmware_py.dispatcher import Dispatcher
from hil.gs.commandlog import CommandEntry, CommandLog
from hil.mission.api import PlantControl, RelayControl, RoverApi
from hil.mission.loop import LoopConfig, WholeLoop

pytestmark = pytest.mark.slow


class Outcomes(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.w: WholeLoop | None = None

    @initialize(seed=st.integers(1, 10_000))
    def start(self, seed: int) -> None:
        self.runs: dict[tuple[int, int], list[float]] = {}  # request id -> loop times it ran
        orig = Dispatcher._c_ping
        self._orig = orig
        runs, machine = self.runs, self

        def ping(d: Any, a: Any, t: Any, b: Any, s: Any, e: Any) -> int:
            if t is not None:
                runs.setdefault((t[0], t[1]), []).append(machine.loop.now())
            return orig(d, a, t, b, s, e)

        Dispatcher._c_ping = ping  # type: ignore[method-assign]
        self.w = WholeLoop(LoopConfig(seed=seed, relay="harsh", archive=False))
        self.rover = RoverApi(self.w)
        self.relay = RelayControl(self.w)
        self.plant = PlantControl(self.w, self.rover)
        self.rover.await_mode("STANDBY", timeout=120)
        self.log = CommandLog(self.loop.ground)
        self.entries: list[CommandEntry] = []
        self.boots: list[float] = []  # loop times of the reboots we caused

    @rule(n=st.integers(1, 3), wait_s=st.floats(0, 30))
    def command(self, n: int, wait_s: float) -> None:
        for _ in range(n):
            e = self.log.new("PING", {}, "test")
            self.log.attach(e, self.rover.send_command("PING"))
            self.entries.append(e)
        self.rover.wait(wait_s)
        self.log.update()

    @rule(duration_s=st.floats(10, 300), wait_s=st.floats(0, 60))
    def outage(self, duration_s: float, wait_s: float) -> None:
        self.relay.outage(duration_s)
        self.rover.wait(wait_s)
        self.log.update()

    @rule(wait_s=st.floats(0, 20))
    def reboot(self, wait_s: float) -> None:
        self.boots.append(self.loop.now())
        self.plant.inject("BROWN_OUT")
        self.rover.wait(wait_s)
        self.log.update()

    @rule()
    def reconnect(self) -> None:
        # the transport dropped and came back: a partial frame is forgotten, FOP-1 keeps its state
        self.loop.ground.reset_deframer()
        self.log.update()

    @property
    def loop(self) -> WholeLoop:
        assert self.w is not None
        return self.w

    def teardown(self) -> None:
        if self.w is None:
            return
        try:
            self.rover.wait(1500.0)  # quiet: the queue drains and the gaps are retrieved
            self.log.update()
            completed = 0
            for rid, times in self.runs.items():
                assert len(times) == 1, f"request {rid} ran {len(times)} times"
            for e in self.entries:
                assert e.request_id is not None
                ran = self.runs.get(e.request_id)
                stages = [s.stage for s in e.stages]
                if e.outcome == "COMPLETED":
                    assert ran, (e.request_id, stages)
                    completed += 1
                elif e.outcome == "FAILED":
                    assert not ran and "never sent" in e.stages[-1].detail, (e.request_id, stages)
                else:
                    assert e.outcome is None, (e.request_id, stages)
                    # unresolved: it never ran, or a reboot after it ran took its reports away
                    assert not ran or any(b >= ran[0] for b in self.boots), (e.request_id, stages, ran, self.boots)
            # the reports of what ran come back: only a reboot can leave one unresolved
            assert completed >= len(self.runs) - len(self.boots) * 4
        finally:
            Dispatcher._c_ping = self._orig  # type: ignore[method-assign]
            self.w.close()


Outcomes.TestCase.settings = settings(
    max_examples=12, stateful_step_count=10, deadline=None, suppress_health_check=list(HealthCheck)
)
TestOutcomes = Outcomes.TestCase
