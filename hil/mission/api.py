"""The HIL test front door: F Prime style rover API, relay control and plant faults.

`RoverApi` has the names and arguments of `hil.gs.api.GroundApi` (send_, await_,
assert_, send_and_await_, send_and_assert_ x command / telemetry / event), but it
is synchronous over an event loop it drives: each wait runs the loop until the
condition holds or the timeout passes, and timeouts are in rover seconds. On the
virtual-time loop that makes an hour's wait take a moment; on a real target the
same test waits in real time.

    rover.send_and_assert_command("MODE_SET", mode="STANDBY")
    rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=10, speed_mph=200, timeout=400)
    rover.await_telemetry("odometer_m", greater_than(9.9), timeout=30)
    rover.assert_event("DRIVE_COMPLETED")

Histories: everything received is kept (`history`); `start_test_case()` opens a
sub-history, and `events` / `telemetry_history` / `commands` / `assert_*` see only
the current test case. Rover resets are survived: the ground resynchronises COP-1
when a new BOOT event arrives, and waits simply continue until the link is back.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from hil.errors import FarsideError
from hil.gs import api as gs_api
from hil.gs.link import CommandTrack
from hil.gs.state import EventRecord
from hil.mission.ground import HkSample, LoopGround
from hil.relay.channel import BitErrors, Relay
from hil.relay.profile import Schedule, Visibility
from protocols.cop1 import CommandState

T = TypeVar("T")

# the gs predicates, so tests import them from one place
Predicate = gs_api.Predicate
equal_to = gs_api.equal_to
greater_than = gs_api.greater_than
less_than = gs_api.less_than
within = gs_api.within



class CheckFailed(gs_api.CheckFailed, AssertionError):
    """A check that did not hold: pytest reports it as a failed assertion."""


class Harness(Protocol):
    """What RoverApi needs of a target: a ground on a loop it can run."""

    ground: LoopGround
    relay: Relay | None
    hal: Any  # the SimHal of an in-process rover, else None
    archive_path: Path
    target: str  # "virtual" | "mpy" | "serial"

    def now(self) -> float: ...

    def run(self, coro: Coroutine[Any, Any, T]) -> T: ...

    def relay_changed(self) -> None: ...

    def relay_stats(self) -> dict[str, Any]: ...


_MISSING = gs_api._MISSING  # the shared checks and these agree on "not yet"


class RoverApi(gs_api.FrontDoor):
    """F Prime style commanding and checks on one target (see the module docstring)."""

    failure = CheckFailed

    def __init__(self, harness: Harness, default_timeout: float = 120.0) -> None:
        self.h = harness
        self.ground = harness.ground
        self.state = harness.ground.state
        self.mission = harness.ground.mission
        self.default_timeout = default_timeout
        self.test_case = ""
        self._marks = (0, 0, 0)

    @property
    def target(self) -> str:
        """virtual | mpy | serial: the kind of target this API drives."""
        return self.h.target

    # --- histories ---------------------------------------------------------------------
    @property
    def history(self) -> Any:
        """Everything received since the target started (events, hk samples, boots)."""
        return self.ground.history

    def start_test_case(self, name: str = "") -> None:
        """Open a sub-history: the per-test views and assert_* start after this point."""
        h = self.ground.history
        self.test_case = name
        self._marks = (len(h.events), len(h.hk), len(self.ground.tracks))

    clear_histories = start_test_case

    @property
    def events(self) -> list[EventRecord]:
        return self.ground.history.events[self._marks[0]:]

    @property
    def telemetry_history(self) -> list[HkSample]:
        return self.ground.history.hk[self._marks[1]:]

    @property
    def commands(self) -> list[CommandTrack]:
        return self.ground.tracks[self._marks[2]:]

    def _mark_now(self) -> int:
        return len(self.ground.history.events)

    def _mark_after(self, event: EventRecord) -> int:
        hist = self.ground.history.events
        return next((i + 1 for i in range(len(hist) - 1, -1, -1) if hist[i] is event), len(hist))

    def _test_mark(self) -> int:
        return self._marks[0]

    def _events_after(self, mark: int) -> list[EventRecord]:
        return self.ground.history.events[mark:]

    # --- time ----------------------------------------------------------------------------
    def now(self) -> float:
        """Seconds on the target's clock since the harness started (rover uptime clock)."""
        return self.h.now()

    def wait(self, seconds: float) -> None:
        """Let `seconds` of rover time pass (telemetry keeps arriving)."""
        self.h.run(asyncio.sleep(seconds))

    def _until(self, check: Callable[[], Any], timeout: float, describe: Callable[[], str]) -> Any:
        """Run the loop until check() returns something other than _MISSING, or time out."""

        async def waiter() -> Any:
            ground = self.ground
            deadline = self.h.now() + timeout
            while True:
                r = check()
                if r is not _MISSING:
                    return r
                left = deadline - self.h.now()
                if left <= 0:
                    raise self.failure(describe())
                ev = ground.changed
                ev.clear()
                try:
                    await asyncio.wait_for(ev.wait(), left)
                except (asyncio.TimeoutError, TimeoutError):
                    pass

        return self.h.run(waiter())

    # --- commands ------------------------------------------------------------------------
    def send_command(
        self, name: str, args: dict[str, Any] | None = None, at: int | None = None, bypass: bool = False, **kwargs: Any
    ) -> CommandTrack:
        """Queue a command (Type-AD; `bypass` for Type-BD); `at` = rover time s (time-tagged)."""
        typed = self.typed(name, args, kwargs)

        async def send() -> CommandTrack:
            return self.ground.send(name, typed, at=at, bypass=bypass)

        return self.h.run(send())

    def await_verification(self, track: CommandTrack, until: str = "completed", timeout: float | None = None) -> list[str]:
        """Wait for a command's `until` stage; raise CheckFailed on a failure report or timeout."""
        timeout = self._timeout(timeout)

        def check() -> Any:
            stages = self.ground.reports(track)
            bad = track.failure()
            if bad is not None:
                raise self.failure(self.ground.failure_text(track, bad))
            if track.reached(until):
                if until == "completed" and track.fop is not None:
                    self.ground.fop.mark_verified(track.fop, self.h.now())
                return stages
            if track.fop is not None and track.fop.state == CommandState.FAILED and track.fop.reason is not None:
                # never sent (an UNKNOWN one may still have run: its reports may yet arrive)
                raise CheckFailed(f"{track.describe()}: never sent (COP-1: {track.fop.reason.value})")
            return _MISSING

        def describe() -> str:
            seen = ", ".join(self.ground.reports(track)) or "no report"
            state = track.fop.state.value if track.fop is not None else "?"
            return f"{track.describe()}: expected '{until}' within {timeout:g} s, seen: {seen} (link: {state})"

        stages: list[str] = self._until(check, timeout, describe)
        return stages

    def send_and_assert_command(
        self, name: str, args: dict[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> list[str]:
        """Send, then wait until the rover reports it completed (TM 1/7)."""
        track = self.send_command(name, args, **kwargs)
        return self.await_verification(track, "completed", timeout)

    def send_and_await_failure(
        self, name: str, args: dict[str, Any] | None = None, timeout: float | None = None, **kwargs: Any
    ) -> tuple[str, str]:
        """Send a command expected to fail: returns (stage, failure code name)."""
        return self.await_failure(self.send_command(name, args, **kwargs), timeout)

    def await_failure(self, track: CommandTrack, timeout: float | None = None) -> tuple[str, str]:
        """Wait for a command's failure report: returns (stage, failure code name)."""
        t = self._timeout(timeout)

        def check() -> Any:
            self.ground.reports(track)
            bad = track.failure()
            if bad is not None:
                return (bad.stage, self.ground.failure_name(bad))
            if track.reached("completed"):
                raise self.failure(f"{track.describe()}: expected a failure, it completed")
            return _MISSING

        result: tuple[str, str] = self._until(check, t, lambda: f"{track.describe()}: no failure report within {t:g} s")
        return result

    def send_raw_frame(self, frame: bytes) -> None:
        """Put a TC transfer frame on the uplink exactly as given (replays, forgeries)."""

        async def put() -> None:
            self.ground.send_raw(frame)

        self.h.run(put())

    # --- events -----------------------------------------------------------------------------
    def assert_no_event(self, name: str) -> None:
        hits = [e for e in self.events if e.name == name.upper()]
        if hits:
            raise CheckFailed(f"event {name}: expected none, received {len(hits)} (first: {hits[0].message})")

    def count_events(self, name: str) -> int:
        return sum(1 for e in self.events if e.name == name.upper())

    # --- link -----------------------------------------------------------------------------
    def link_counters(self) -> dict[str, Any]:
        """Ground link state, COP-1 statistics and the relay's counters, JSON-ready."""
        st = self.ground.state.link
        fop = self.ground.fop
        return {
            "tm_frames_ok": st.frames_ok,
            "tm_frames_bad": st.frames_bad,
            "tm_frames_lost": st.frames_lost,
            "tc_frames_sent": st.tc_frames_sent,
            "cop1": {"state": st.cop_state, "vs": fop.vs, **vars(fop.stats)},
            "clcw": None if st.clcw is None else st.clcw.to_int(),
            "relay": self.h.relay_stats(),
        }

    def failure_report(self, events: int = 15) -> str:
        """The last telemetry, the event log and the link counters, as text for a test report."""
        import json

        lines = [f"rover time {self.now():.1f} s, test case {self.test_case or '-'}"]
        hk = self.ground.state.hk
        if hk:
            keys = ("mode", "x_m", "y_m", "heading_deg", "odometer_m", "speed_mph", "pitch_deg", "roll_deg",
                    "battery_pct", "boot_count", "reset_cause", "cmd_accepted", "cmd_completed", "cmd_failed",
                    "cmd_rejected", "tc_auth_rejected", "tt_queue_depth")
            states = " ".join(str(hk.get(f"wheel{i}_state", "?")) for i in range(1, 7))
            lines.append("last telemetry: " + ", ".join(f"{k}={_fmt(hk.get(k))}" for k in keys if k in hk))
            lines.append(f"wheel states: {states}")
        else:
            lines.append("last telemetry: none received")
        lines.append(f"event log (last {events}):")
        for e in self.ground.history.events[-events:]:
            lines.append(f"  t={e.rover_time_s:10.1f} {e.severity:6} {e.name}: {e.message}")
        lines.append("link counters: " + json.dumps(self.link_counters(), sort_keys=True, default=str))
        lines.append(f"archive: {self.h.archive_path} (farside gs replay {self.h.archive_path})")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


class RelayControl:
    """Change the relay's link conditions mid-test: outages, BER, delay, loss."""

    def __init__(self, harness: Harness) -> None:
        if harness.relay is None:
            raise FarsideError("expected a relay between ground and rover, got none (--farside-relay none)")
        self.h = harness
        self.relay: Relay = harness.relay

    @property
    def profile(self) -> str:
        return self.relay.profile.name

    def _directions(self, direction: str) -> list[Any]:
        r = self.relay
        if direction not in ("both", "uplink", "downlink"):
            raise FarsideError(f"expected direction both|uplink|downlink, got {direction!r}")
        return [d for d in (r.uplink, r.downlink) if direction in ("both", d.name)]

    def outage(self, duration_s: float, start_in_s: float = 0.0) -> tuple[float, float]:
        """No visibility from now+start_in_s for duration_s (relay time); returns (start, end).

        Like a real pass gap: what enters the relay meanwhile is stored and forwarded after.
        """
        now = self.h.now()
        start, end = now + start_in_s, now + start_in_s + duration_s
        gap = Schedule(((-math.inf, start), (end, math.inf)), None)
        vis = Visibility(self.relay.profile.visibility.schedules + (gap,))
        self.relay.profile = replace(self.relay.profile, visibility=vis)
        for d in (self.relay.uplink, self.relay.downlink):
            d.visibility = vis
        self.h.relay_changed()
        return start, end

    def in_outage(self) -> bool:
        return self.relay.outage(self.h.now())

    def set_ber(self, ber: float, direction: str = "both") -> None:
        for d in self._directions(direction):
            d.cfg = replace(d.cfg, ber=ber)
            d.errors = BitErrors(ber, d.cfg.burst, d.rng)
        self.h.relay_changed()

    def set_delay(self, delay_s: float, direction: str = "both") -> None:
        for d in self._directions(direction):
            d.cfg = replace(d.cfg, delay_s=delay_s)
        self.h.relay_changed()

    def set_frame_loss(self, p: float, direction: str = "both") -> None:
        for d in self._directions(direction):
            d.cfg = replace(d.cfg, frame_loss=p)
        self.h.relay_changed()

    def stats(self) -> dict[str, Any]:
        return self.h.relay_stats()


SIM_FAULTS = ("CLEAR", "JAM", "OPEN_CIRCUIT", "ENCODER_DEAD", "IMU_STUCK", "BROWN_OUT", "SLOPE_DEG",
              "ROCK_AHEAD_M", "SUN", "HANG_TASK")


class PlantControl:
    """Fault injection into a simulated rover's plant (dictionary enum sim_fault).

    An in-process rover's plant is reached directly (immediate, no link traffic); a sim
    board elsewhere (MicroPython virtual board, Pico with the sim HAL) gets SIM_INJECT.
    """

    def __init__(self, harness: Harness, rover: RoverApi) -> None:
        self.h = harness
        self.rover = rover
        self.injected: list[tuple[float, str, int, float]] = []

    @property
    def direct(self) -> bool:
        return self.h.hal is not None

    def inject(self, fault: str, wheel: int = 0, value: float = 0.0) -> None:
        name = fault.upper()
        if name not in SIM_FAULTS:
            raise FarsideError(f"expected a sim fault ({', '.join(SIM_FAULTS)}), got {fault!r}")
        self.injected.append((self.h.now(), name, wheel, value))
        if self.direct and name not in getattr(self.h.hal, "commanded_faults", ()):
            if not self.h.hal.inject(SIM_FAULTS.index(name), wheel, float(value)):
                raise FarsideError(f"the plant refused {name} on wheel {wheel}")
            rouse = getattr(self.h, "rouse", None)
            if rouse is not None:
                rouse()  # an idle rover napping in virtual time looks at once
            return
        self.rover.send_and_assert_command("SIM_INJECT", fault=name, wheel=wheel, value=value, bypass=True)

    def jam_wheel(self, wheel: int) -> None:
        self.inject("JAM", wheel)

    def open_circuit(self, wheel: int) -> None:
        self.inject("OPEN_CIRCUIT", wheel)

    def encoder_dead(self, wheel: int) -> None:
        self.inject("ENCODER_DEAD", wheel)

    def slope(self, deg: float) -> None:
        self.inject("SLOPE_DEG", 0, deg)

    def rock_ahead(self, distance_m: float) -> None:
        self.inject("ROCK_AHEAD_M", 0, distance_m)

    def sun(self, level: float) -> None:
        self.inject("SUN", 0, level)

    def battery(self, pct: float) -> None:
        self.inject("BROWN_OUT", 0, pct)

    def hang_task(self, task_id: int) -> None:
        self.inject("HANG_TASK", task_id)

    def clear(self) -> None:
        self.inject("CLEAR")

    @property
    def true_pose(self) -> tuple[float, float, float] | None:
        """The plant's own (x, y, travelled) when in process: ground truth for checks."""
        if not self.direct:
            return None
        p = self.h.hal.plant
        return (p.x, p.y, p.travelled)

    @property
    def true_heading_deg(self) -> float | None:
        """The plant's own heading (deg, counter-clockwise, 0 where it powered up) when in
        process: ground truth for turns and for the side offset of a straight drive."""
        if not self.direct:
            return None
        return math.degrees(self.h.hal.plant.heading)
