"""Mission scenarios for `farside mission`: scripted sols on the RoverApi.

A scenario is a function `(ctx: MissionContext) -> None` that commands the rover
through the same API as the HIL tests and records what happened in `ctx.log`:
the steps it went through and every fault it met, with whether the rover survived
it. Fault choices (which wheel, where) come from the seed, so `--seed` changes the
mission and a seed replays it exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from hil.errors import FarsideError
from hil.mission.api import (
    CheckFailed,
    PlantControl,
    RelayControl,
    RoverApi,
    equal_to,
    greater_than,
    less_than,
)


@dataclass
class StepRecord:
    name: str
    started_s: float
    ended_s: float | None = None
    ok: bool | None = None
    note: str = ""


@dataclass
class FaultRecord:
    """A fault the rover met: what, when (rover uptime s), and whether it came through."""

    kind: str
    detail: str
    met_at_s: float
    survived: bool = False
    how: str = ""


@dataclass
class MissionLog:
    steps: list[StepRecord] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"steps": [asdict(s) for s in self.steps], "faults": [asdict(f) for f in self.faults]}


@dataclass
class MissionContext:
    rover: RoverApi
    relay: RelayControl | None
    plant: PlantControl | None
    seed: int
    log: MissionLog = field(default_factory=MissionLog)
    on_step: Callable[[StepRecord], None] | None = None

    @property
    def rng(self) -> random.Random:
        if not hasattr(self, "_rng"):
            self._rng = random.Random(self.seed)
        return self._rng

    @contextmanager
    def step(self, name: str) -> Iterator[StepRecord]:
        rec = StepRecord(name, self.rover.now())
        self.log.steps.append(rec)
        if self.on_step:
            self.on_step(rec)
        try:
            yield rec
        except (CheckFailed, FarsideError) as exc:
            rec.ok = False
            rec.note = str(exc)
            rec.ended_s = self.rover.now()
            if self.on_step:
                self.on_step(rec)
            raise
        rec.ok = True
        rec.ended_s = self.rover.now()
        if self.on_step:
            self.on_step(rec)

    def need_plant(self) -> PlantControl:
        if self.plant is None:
            raise FarsideError("this scenario injects plant faults: it needs a simulated rover (board sim)")
        return self.plant


# --- building blocks -----------------------------------------------------------------


def checkout(ctx: MissionContext) -> None:
    """First contact: telemetry flowing, dictionary agreed, the rover answers a ping."""
    r = ctx.rover
    with ctx.step("checkout: first contact, dictionary check, ping"):
        r.await_telemetry("mode", None, timeout=120)
        rover_hash = r.ground.state.rover_dict_hash
        if rover_hash != r.mission.hash:
            raise FarsideError(f"dictionary mismatch: rover {rover_hash}, ground {r.mission.hash:08x}")
        r.send_and_assert_command("PING", timeout=120)
        if r.get_telemetry("mode") != "STANDBY":
            r.send_and_assert_command("MODE_SET", mode="STANDBY", timeout=120)


def ramp_egress(ctx: MissionContext, ramp_m: float = 4.0, ramp_deg: float = -15.0) -> None:
    """Roll down the lander's ramp onto the regolith."""
    r, plant = ctx.rover, ctx.need_plant()
    with ctx.step(f"ramp egress: {ramp_m:g} m down a {abs(ramp_deg):g} deg ramp"):
        plant.slope(ramp_deg)
        track = r.send_command("DRIVE_DISTANCE", distance_m=ramp_m + 1.0, speed_mph=150)
        r.await_telemetry("pitch_deg", less_than(ramp_deg / 2), timeout=120)
        r.await_telemetry("odometer_m", greater_than(ramp_m - 0.5), timeout=900)
        plant.slope(0.0)
        r.await_verification(track, timeout=600)


def traverse_with_wheel_fault(ctx: MissionContext, distance_m: float = 40.0) -> None:
    """A long leg; a wheel jams part way (wheel and place from the seed); finish on five."""
    r, plant = ctx.rover, ctx.need_plant()
    wheel = ctx.rng.randint(1, 6)
    at_m = round(ctx.rng.uniform(0.3, 0.6) * distance_m, 1)
    with ctx.step(f"traverse {distance_m:g} m; wheel {wheel} jams after {at_m:g} m"):
        start = r.await_telemetry("odometer_m", None, timeout=60)
        track = r.send_command("DRIVE_DISTANCE", distance_m=distance_m, speed_mph=200)
        r.await_telemetry("odometer_m", greater_than(start + at_m), timeout=distance_m * 18 + 300)
        plant.jam_wheel(wheel)
        fault = FaultRecord("wheel jam", f"wheel {wheel} jammed after {at_m:g} m", r.now())
        ctx.log.faults.append(fault)
        ev = r.await_event("WHEEL_FAULT", timeout=120)
        r.await_event("WHEEL_ISOLATED", timeout=60, since=ev)
        r.await_verification(track, timeout=distance_m * 30 + 600)
        done = r.assert_event("DRIVE_COMPLETED")
        err_m = abs(done.args["travelled_mm"] / 1000.0 - distance_m)
        fault.survived = err_m <= 0.2
        fault.how = f"isolated wheel {ev.args['wheel']}, completed {done.args['travelled_mm'] / 1000:.2f} m on five wheels"
        # back in service for the rest of the sol: the ground clears the jam and re-enables it
        plant.inject("JAM", wheel, -1.0)
        r.send_and_assert_command("WHEEL_ENABLE", wheel=wheel, timeout=120)


def obstacle_detour(ctx: MissionContext, leg_m: float = 20.0) -> None:
    """A rock in the path stops the drive; the operator turns away and drives around it."""
    r, plant = ctx.rover, ctx.need_plant()
    with ctx.step(f"hazard: rock in a {leg_m:g} m leg, detour around it"):
        start = r.await_telemetry("odometer_m", None, timeout=60)
        track = r.send_command("DRIVE_DISTANCE", distance_m=leg_m, speed_mph=200)
        r.await_telemetry("odometer_m", greater_than(start + 3.0), timeout=600)
        mark = len(r.history.events)
        plant.rock_ahead(1.5)
        fault = FaultRecord("obstacle", "0.3 m rock 1.5 m ahead", r.now())
        ctx.log.faults.append(fault)
        r.await_event("HAZARD_OBSTACLE", timeout=120, since=mark)
        r.await_failure(track, timeout=120)
        r.await_mode("STANDBY", timeout=60)
        r.send_and_assert_command("TURN", angle_deg=45.0, timeout=600)
        r.send_and_assert_command("DRIVE_DISTANCE", distance_m=4.0, speed_mph=200, timeout=600)
        r.send_and_assert_command("TURN", angle_deg=-45.0, timeout=600)
        r.send_and_assert_command("DRIVE_DISTANCE", distance_m=5.0, speed_mph=200, timeout=600)
        fault.survived = True
        fault.how = "drive stopped short of the rock; detoured 45 deg left and drove on"


def outage_with_stored_sequence(ctx: MissionContext, outage_s: float = 900.0) -> None:
    """Upload a time-tagged sequence, lose the relay, let the rover run it alone."""
    r = ctx.rover
    if ctx.relay is None:
        raise FarsideError("this scenario needs the relay (outage): run it with a relay profile")
    with ctx.step(f"relay outage of {outage_s:g} s; a stored sequence runs meanwhile"):
        now_rt = int(r.await_telemetry("rover_time_s", None, timeout=60))
        t0 = now_rt + 150
        seq = [("DRIVE_DISTANCE", {"distance_m": 6.0, "speed_mph": 200}, t0),
               ("TURN", {"angle_deg": -30.0}, t0 + 160),
               ("DRIVE_DISTANCE", {"distance_m": 4.0, "speed_mph": 200}, t0 + 230)]
        for name, args, at in seq:
            r.send_and_assert_command(name, args, at=at, timeout=120)
        r.await_telemetry("tt_queue_depth", equal_to(len(seq)), timeout=60)
        start, end = ctx.relay.outage(outage_s, start_in_s=20.0)
        fault = FaultRecord("relay outage", f"no link for {outage_s:g} s", start)
        ctx.log.faults.append(fault)
        mark = len(r.history.events)
        r.wait(end - r.now())
        # events lost on the downlink come back from the packet store later, out of arrival
        # order: count each kind from the outage on rather than after one another
        first: Any = mark
        for _ in seq:
            first = r.await_event("TT_RELEASED", timeout=300, since=first)
        drives: Any = mark
        for _ in seq:  # each motion (the turn too) ends with DRIVE_COMPLETED
            drives = r.await_event("DRIVE_COMPLETED", timeout=300, since=drives)
        r.send_and_assert_command("PING", timeout=300)
        fault.survived = r.await_telemetry("tt_queue_depth", equal_to(0), timeout=60) == 0
        fault.how = f"{len(seq)} time-tagged commands ran on the rover clock; link back, ping answered"


# --- scenarios ---------------------------------------------------------------------------


def sortie(ctx: MissionContext) -> None:
    """The default: ramp egress, a traverse with a jammed wheel, a rock, a relay outage."""
    checkout(ctx)
    ramp_egress(ctx)
    traverse_with_wheel_fault(ctx)
    obstacle_detour(ctx)
    outage_with_stored_sequence(ctx)


def egress(ctx: MissionContext) -> None:
    """The first drive: checkout and down the ramp."""
    checkout(ctx)
    ramp_egress(ctx)


def traverse(ctx: MissionContext) -> None:
    """Checkout and a 100 m traverse with a wheel failure."""
    checkout(ctx)
    traverse_with_wheel_fault(ctx, 100.0)


def outage(ctx: MissionContext) -> None:
    """Checkout and a relay outage with a stored sequence."""
    checkout(ctx)
    outage_with_stored_sequence(ctx)


SCENARIOS: dict[str, Callable[[MissionContext], None]] = {
    "sortie": sortie,
    "egress": egress,
    "traverse": traverse,
    "outage": outage,
}
DEFAULT_SCENARIO = "sortie"


def scenario(name: str) -> Callable[[MissionContext], None]:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise FarsideError(f"expected a scenario ({', '.join(SCENARIOS)}), got {name!r}") from None
