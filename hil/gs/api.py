"""The operator/test front door, in F Prime's integration-test style.

One class, a regular grid of names: `send_`, `await_`, `assert_`,
`send_and_await_`, `send_and_assert_` x command / telemetry / event.
`await_*` waits from now with a timeout and returns the item; `assert_*`
searches what has already arrived. Predicates are small callables with a
readable `str`, so failures explain themselves. The same API drives procedures
(`farside gs run`) and the HIL pytest plugin.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hil.errors import FarsideError
from hil.gs.mission import Mission
from hil.gs.session import EXIT_TIMEOUT, CommandTrack, Session
from hil.gs.state import AUTH_ALARM, Alarm, EventRecord, GroundState, Verification


class CheckFailed(FarsideError):
    """A procedure or test check that did not hold (exit code 1)."""

    exit_code = 1


@dataclass(frozen=True)
class Predicate:
    """`value OP operand`, printable (`mode == STANDBY`, `x_m >= 1.0`)."""

    op: str
    operand: Any

    OPS = {
        "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge,
    }

    def __call__(self, value: Any) -> bool:
        if value is None:
            return False
        a, b = value, self.operand
        if isinstance(b, str) or isinstance(a, str):
            a, b = str(a).upper(), str(b).upper()
            if self.op not in ("==", "!="):
                return False
        try:
            return bool(self.OPS[self.op](a, b))
        except TypeError:
            return False

    def __str__(self) -> str:
        return f"{self.op} {self.operand}"


def equal_to(v: Any) -> Predicate:
    return Predicate("==", v)


def greater_than(v: float) -> Predicate:
    return Predicate(">", v)


def less_than(v: float) -> Predicate:
    return Predicate("<", v)


def within(v: float, tol: float) -> Callable[[Any], bool]:
    class _Within:
        def __call__(self, x: Any) -> bool:
            return x is not None and abs(float(x) - v) <= tol

        def __str__(self) -> str:
            return f"within {tol:g} of {v:g}"

    return _Within()


def _describe(pred: Callable[[Any], bool] | None) -> str:
    return "anything" if pred is None else str(pred)


_MISSING = object()  # what a check returns while its condition does not hold yet


class FrontDoor:
    """The grid of names shared by the live ground (`GroundApi`) and the HIL harness
    (`hil.mission.api.RoverApi`): argument typing, telemetry and event checks, histories.

    A subclass gives the waiting strategy (`_until`: a condition variable on the wall clock,
    or running an event loop in rover time), the event history marks and `send_command`.
    """

    state: GroundState
    mission: Mission
    default_timeout: float
    failure: type[CheckFailed] = CheckFailed

    # --- what a subclass gives ------------------------------------------------------
    def _until(self, check: Callable[[], Any], timeout: float, describe: Callable[[], str]) -> Any:
        """Wait until check() returns something other than _MISSING; raise failure on timeout."""
        raise NotImplementedError

    def _mark_now(self) -> int:
        """A history mark: events after it are the ones arriving from now on."""
        raise NotImplementedError

    def _mark_after(self, event: EventRecord) -> int:
        """The mark just after an event already received."""
        raise NotImplementedError

    def _test_mark(self) -> int:
        """The mark where this test case's history starts (clear_histories)."""
        raise NotImplementedError

    def _events_after(self, mark: int) -> list[EventRecord]:
        raise NotImplementedError

    def send_command(self, name: str, args: Any = None, *a: Any, **kw: Any) -> CommandTrack:
        raise NotImplementedError

    def _timeout(self, timeout: float | None) -> float:
        return self.default_timeout if timeout is None else timeout

    # --- commands ---------------------------------------------------------------------
    def typed(
        self, name: str, args: dict[str, Any] | list[str] | None = None, kwargs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Arguments typed through the dictionary: a dict (and keywords) of numbers, enum labels,
        quantities with units ('10 m', '5km/h'), octets for a 'bytes' argument, or ['k=v', ...] words."""
        def word(k: str, v: Any) -> str:
            return f"{k}={v.hex() if isinstance(v, bytes | bytearray) else v}"  # 'bytes' arguments as hex

        words = list(args) if isinstance(args, list) else [word(k, v) for k, v in (args or {}).items()]
        words += [word(k, v) for k, v in (kwargs or {}).items()]
        return self.mission.parse_args(name, words)

    def send_and_await_event(
        self, name: str, args: dict[str, Any] | list[str] | None = None, event: str = "",
        timeout: float | None = None, predicate: Callable[[dict[str, Any]], bool] | None = None, **kwargs: Any,
    ) -> EventRecord:
        """Send a command, then wait for event `event` arriving after it was sent."""
        with self.state.cond:
            mark = self._mark_now()
        self.send_command(name, args, **kwargs)
        return self.await_event(event, timeout, predicate, since=mark)

    # --- telemetry ---------------------------------------------------------------------
    def get_telemetry(self, name: str) -> Any:
        if name not in self.mission.hk_parameters:
            raise FarsideError(f"unknown telemetry {name!r}; try `farside gs dict telemetry`")
        return self.state.value(name)

    def assert_telemetry(self, name: str, predicate: Callable[[Any], bool] | None = None) -> Any:
        """The latest value of `name`, which must satisfy `predicate` (None: any value)."""
        v = self.get_telemetry(name)
        if v is None or (predicate is not None and not predicate(v)):
            raise self.failure(f"telemetry {name}: expected {_describe(predicate)}, latest is {v!r}")
        return v

    def await_telemetry(self, name: str, predicate: Callable[[Any], bool] | None = None, timeout: float | None = None) -> Any:
        """Wait for a housekeeping report from now on whose `name` satisfies `predicate`
        (None: the next report)."""
        self.get_telemetry(name)
        t = self._timeout(timeout)
        st = self.state
        with st.cond:
            start = st.hk_count

        def check() -> Any:
            v = st.value(name)
            if st.hk_count > start and (predicate is None or (v is not None and predicate(v))):
                return v
            return _MISSING

        return self._until(
            check, t, lambda: f"telemetry {name}: expected {_describe(predicate)} within {t:g} s, latest is {st.value(name)!r}"
        )

    def await_mode(self, mode: str, timeout: float | None = None) -> str:
        return str(self.await_telemetry("mode", equal_to(mode.upper()), timeout))

    # --- events -------------------------------------------------------------------------
    def assert_event(self, name: str, predicate: Callable[[dict[str, Any]], bool] | None = None) -> EventRecord:
        """The latest event `name` of this test case (since the last clear_histories())."""
        with self.state.cond:
            events = self._events_after(self._test_mark())
        for e in reversed(events):
            if _matches(e, name, predicate):
                return e
        seen = [e.name for e in events][-6:]
        raise self.failure(f"event {name}: expected {_describe(predicate)}, not received (latest: {', '.join(seen) or 'none'})")

    def await_event(
        self, name: str, timeout: float | None = None, predicate: Callable[[dict[str, Any]], bool] | None = None,
        since: int | EventRecord | str | None = None,
    ) -> EventRecord:
        """Wait for event `name` arriving after now, or after `since`: a history mark, an event
        already received (events of the same packet count), or "test" (this test case)."""
        if name.upper() not in self.mission.events_by_name:
            raise FarsideError(f"unknown event {name!r}; try `farside gs dict events`")
        t = self._timeout(timeout)
        with self.state.cond:
            if since == "test":
                mark = self._test_mark()
            elif isinstance(since, EventRecord):
                mark = self._mark_after(since)
            else:
                mark = since if isinstance(since, int) else self._mark_now()

        def check() -> Any:
            for e in self._events_after(mark):
                if _matches(e, name, predicate):
                    return e
            return _MISSING

        def describe() -> str:
            seen = [e.name for e in self._events_after(mark)][-6:]
            return f"event {name}: expected {_describe(predicate)} within {t:g} s (received: {', '.join(seen) or 'none'})"

        ev: EventRecord = self._until(check, t, describe)
        return ev

    # --- alarms ----------------------------------------------------------------------------
    def alarms(self) -> list[Alarm]:
        """The ground's raised, unacknowledged alarms (e.g. TC_AUTH: the rover rejects frames)."""
        return self.state.active_alarms()

    def assert_alarm(self, name: str = AUTH_ALARM) -> Alarm:
        """The raised alarm `name`."""
        for a in self.alarms():
            if a.name == name:
                return a
        raise self.failure(f"alarm {name}: expected raised, not raised (raised: {', '.join(a.name for a in self.alarms()) or 'none'})")

    def assert_no_alarm(self, name: str = AUTH_ALARM) -> None:
        if any(a.name == name for a in self.alarms()):
            raise self.failure(f"alarm {name}: expected none, raised")

    def await_alarm(self, name: str = AUTH_ALARM, timeout: float | None = None) -> Alarm:
        """Wait until the ground raises alarm `name`."""
        t = self._timeout(timeout)

        def check() -> Any:
            for a in self.state.active_alarms():
                if a.name == name:
                    return a
            return _MISSING

        alarm: Alarm = self._until(check, t, lambda: f"alarm {name}: expected within {t:g} s, not raised")
        return alarm

    def acknowledge_alarm(self, name: str = AUTH_ALARM) -> None:
        self.state.acknowledge(name)


def _matches(e: EventRecord, name: str, predicate: Callable[[dict[str, Any]], bool] | None) -> bool:
    return e.name == name.upper() and (predicate is None or predicate(e.args))


class GroundApi(FrontDoor):
    """Commands, telemetry and events of one session (live) or state (replay, read-only);
    waits block on the ground state's condition variable, timeouts in wall-clock seconds."""

    def __init__(self, state: GroundState, session: Session | None = None, default_timeout: float = 30.0) -> None:
        self.state = state
        self.mission = state.mission
        self.session = session
        self.default_timeout = default_timeout
        self._event_mark = 0
        # the history mark just before the latest command was sent: `await_event(name,
        # since=gs.command_mark)` finds an event that command caused even if it came already
        self.command_mark = 0

    @classmethod
    def connect(cls, url: str, *, timeout: float = 15.0, default_timeout: float = 30.0, **session_kw: Any) -> GroundApi:
        """Open a session on `url`, check the rover's dictionary, and wrap it (close() when done)."""
        s = Session.open(url, **session_kw)
        try:
            s.check_dictionary(timeout)
        except BaseException:
            s.close()
            raise
        return cls(s.state, s, default_timeout)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()

    def __enter__(self) -> GroundApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- waiting and history -------------------------------------------------------
    def _until(self, check: Callable[[], Any], timeout: float, describe: Callable[[], str]) -> Any:
        deadline = time.monotonic() + timeout
        with self.state.cond:
            while True:
                r = check()
                if r is not _MISSING:
                    return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self.failure(describe(), EXIT_TIMEOUT)
                self.state.cond.wait(min(left, 0.1))

    def clear_histories(self) -> None:
        """Forget events seen so far (searches start after this point)."""
        with self.state.cond:
            self._event_mark = self.state.event_seq

    def _mark_now(self) -> int:
        return self.state.event_seq

    def _mark_after(self, event: EventRecord) -> int:
        return event.seq

    def _test_mark(self) -> int:
        return self._event_mark

    def _events_after(self, mark: int) -> list[EventRecord]:
        return [e for e in self.state.events if e.seq > mark]

    # --- commands --------------------------------------------------------------
    def _need_session(self) -> Session:
        if self.session is None:
            raise FarsideError("this source is read-only (a replay): it cannot send commands")
        return self.session

    def send_command(  # type: ignore[override]
        self, name: str, args: dict[str, Any] | list[str] | None = None, at: int | None = None
    ) -> CommandTrack:
        session = self._need_session()
        typed = self.typed(name, args)
        with self.state.cond:
            self.command_mark = self._mark_now()
        return session.send_command(name, typed, at=at)

    def send_and_assert_command(
        self, name: str, args: dict[str, Any] | list[str] | None = None, timeout: float | None = None
    ) -> list[Verification]:
        """Send and wait for completion; raises VerificationFailed (exit code by stage)."""
        s = self._need_session()
        track = self.send_command(name, args)
        return s.wait_verification(track, self._timeout(timeout))
