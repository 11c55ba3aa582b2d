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
from hil.gs.session import EXIT_TIMEOUT, CommandTrack, Session
from hil.gs.state import EventRecord, GroundState, Verification


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


class GroundApi:
    """Commands, telemetry and events of one session (live) or state (replay, read-only)."""

    def __init__(self, state: GroundState, session: Session | None = None, default_timeout: float = 30.0) -> None:
        self.state = state
        self.session = session
        self.default_timeout = default_timeout
        self._event_mark = 0

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

    # --- history ---------------------------------------------------------------
    def clear_histories(self) -> None:
        """Forget events seen so far (searches start after this point)."""
        with self.state.cond:
            self._event_mark = self.state.event_seq

    # --- commands --------------------------------------------------------------
    def _need_session(self) -> Session:
        if self.session is None:
            raise FarsideError("this source is read-only (a replay): it cannot send commands")
        return self.session

    def typed(self, name: str, args: dict[str, Any] | list[str] | None) -> dict[str, Any]:
        """Arguments as typed values: a dict of numbers/strings or ['k=v', ...] words."""
        m = self.state.mission
        if args is None:
            args = {}
        words = args if isinstance(args, list) else [f"{k}={v}" for k, v in args.items()]
        return m.parse_args(name, words)

    def send_command(self, name: str, args: dict[str, Any] | list[str] | None = None, at: int | None = None) -> CommandTrack:
        return self._need_session().send_command(name, self.typed(name, args), at=at)

    def send_and_assert_command(
        self, name: str, args: dict[str, Any] | list[str] | None = None, timeout: float | None = None
    ) -> list[Verification]:
        """Send and wait for completion; raises VerificationFailed (exit code by stage)."""
        s = self._need_session()
        track = self.send_command(name, args)
        return s.wait_verification(track, self.default_timeout if timeout is None else timeout)

    def send_and_await_event(
        self, name: str, args: dict[str, Any] | list[str] | None = None, event: str = "",
        timeout: float | None = None, predicate: Callable[[dict[str, Any]], bool] | None = None,
    ) -> EventRecord:
        with self.state.cond:
            mark = self.state.event_seq
        self.send_command(name, args)
        return self.await_event(event, timeout, predicate, since=mark)

    # --- telemetry ---------------------------------------------------------------
    def get_telemetry(self, name: str) -> Any:
        if name not in self.state.mission.hk_params:
            raise FarsideError(f"unknown telemetry {name!r}; try `farside gs dict telemetry`")
        return self.state.value(name)

    def assert_telemetry(self, name: str, predicate: Callable[[Any], bool] | None = None) -> Any:
        v = self.get_telemetry(name)
        if v is None or (predicate is not None and not predicate(v)):
            raise CheckFailed(f"telemetry {name}: expected {_describe(predicate)}, latest is {v!r}")
        return v

    def await_telemetry(self, name: str, predicate: Callable[[Any], bool] | None = None, timeout: float | None = None) -> Any:
        """Wait for the next HK whose `name` satisfies `predicate` (None: any new value)."""
        self.get_telemetry(name)
        timeout = self.default_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self.state.cond:
            start_count = self.state.hk_count
            while True:
                v = self.state.value(name)
                fresh = self.state.hk_count > start_count
                if (predicate is None and fresh) or (predicate is not None and v is not None and predicate(v)):
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CheckFailed(
                        f"telemetry {name}: expected {_describe(predicate)} within {timeout:g} s, latest is {v!r}",
                        EXIT_TIMEOUT,
                    )
                self.state.cond.wait(min(left, 0.1))

    def await_mode(self, mode: str, timeout: float | None = None) -> str:
        return str(self.await_telemetry("mode", equal_to(mode.upper()), timeout))

    # --- events ---------------------------------------------------------------------
    def _events_since(self, mark: int) -> list[EventRecord]:
        return [e for e in self.state.events if e.seq > mark]

    def assert_event(self, name: str, predicate: Callable[[dict[str, Any]], bool] | None = None) -> EventRecord:
        """The latest event `name` received since the last clear_histories()."""
        with self.state.cond:
            for e in reversed(self._events_since(self._event_mark)):
                if e.name == name.upper() and (predicate is None or predicate(e.args)):
                    return e
            seen = [e.name for e in self._events_since(self._event_mark)][-5:]
        raise CheckFailed(f"event {name}: expected {_describe(predicate)}, not received (latest: {', '.join(seen) or 'none'})")

    def await_event(
        self, name: str, timeout: float | None = None, predicate: Callable[[dict[str, Any]], bool] | None = None,
        since: int | None = None,
    ) -> EventRecord:
        if name.upper() not in self.state.mission.events_by_name:
            raise FarsideError(f"unknown event {name!r}; try `farside gs dict events`")
        timeout = self.default_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self.state.cond:
            mark = self.state.event_seq if since is None else since
            while True:
                for e in self._events_since(mark):
                    if e.name == name.upper() and (predicate is None or predicate(e.args)):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CheckFailed(f"event {name}: not received within {timeout:g} s", EXIT_TIMEOUT)
                self.state.cond.wait(min(left, 0.1))
