"""Procedures: a plain list of steps, or a Python file using the GroundApi.

Plain procedure (one step per line, `#` comments):

    send DRIVE_DISTANCE distance_m=1 speed_mph=200 timeout=60   # waits for completion
    send-at +30s TURN angle_deg=90                             # time-tagged (TT_INSERT)
    wait 5                                                     # seconds
    check mode == STANDBY                                      # latest HK, now
    await mode == STANDBY timeout=30                           # next HK that matches
    event DRIVE_COMPLETED timeout=30                           # an event since the last send
    expect-event WHEEL_FAULT                                   # already received

An `event` step waits for an event that arrived after the latest `send` (or `send-at`) was
sent, as F Prime's `await_event` takes a start index: a `send` step waits for its command to
complete, and the events that command caused arrive before the step ends, so waiting "from
now" would miss them. Each matched event moves the start past it, so two `event` steps need
two events, in the order they arrived.

Python procedure (`*.py`): runs with `gs` (a GroundApi) and the predicates
(`equal_to`, `greater_than`, `less_than`, `within`) in scope; a `run(gs)`
function, if defined, is called. The first failed step stops the run.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hil.errors import FarsideError
from hil.gs import api as api_mod
from hil.gs.api import CheckFailed, GroundApi, Predicate
from hil.gs.units import parse_quantity
from hil.gs.watch import event_message


@dataclass
class StepResult:
    line: int
    text: str
    ok: bool
    detail: str


def _operand(text: str) -> object:
    try:
        v, unit = parse_quantity(text)
        if unit is None:
            return v
    except FarsideError:
        pass
    return text


def _options(words: list[str]) -> tuple[list[str], dict[str, str]]:
    rest, opts = [], {}
    for w in words:
        if w.startswith("timeout="):
            opts["timeout"] = w.split("=", 1)[1]
        else:
            rest.append(w)
    return rest, opts


def _seconds(text: str) -> float:
    from hil.gs.units import convert

    v, unit = parse_quantity(text)
    return float(v) if unit is None else convert(float(v), unit, "s")


def parse_condition(words: list[str], where: str) -> tuple[str, Predicate]:
    if len(words) != 3 or words[1] not in Predicate.OPS:
        raise FarsideError(f"{where}: expected NAME OP VALUE (OP one of {' '.join(Predicate.OPS)}), got {' '.join(words)!r}")
    return words[0], Predicate(words[1], _operand(words[2]))


def _check_step(gs: GroundApi, verb: str, body: list[str], opts: dict[str, str]) -> None:
    """Reject a malformed step before the procedure starts."""
    if "timeout" in opts:
        _seconds(opts["timeout"])
    if verb in ("check", "await"):
        parse_condition(body, verb)
        if body[0] not in gs.state.mission.hk_parameters:
            raise FarsideError(f"unknown telemetry {body[0]!r}")
    elif verb == "send":
        if not body:
            raise FarsideError("send needs a command")
        gs.typed(body[0], body[1:])
    elif verb == "send-at":
        if len(body) < 2:
            raise FarsideError("send-at needs a time and a command")
        gs.typed(body[1], body[2:])
    elif verb == "wait":
        if len(body) != 1:
            raise FarsideError("wait needs one duration (e.g. wait 5, wait 2min)")
        _seconds(body[0])
    elif verb in ("event", "expect-event"):
        if len(body) != 1 or body[0].upper() not in gs.state.mission.events_by_name:
            raise FarsideError(f"{verb} needs one event name from the dictionary, got {' '.join(body)!r}")


def run_plain(path: Path, gs: GroundApi, report: Callable[[StepResult], None], rover_time: Callable[[], float] | None = None) -> list[StepResult]:
    results: list[StepResult] = []
    lines = path.read_text().splitlines()
    # parse everything first: a typo on line 40 must not surface after a 10-minute drive
    steps: list[tuple[int, str, list[str]]] = []
    for n, raw in enumerate(lines, 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise FarsideError(f"{path.name}:{n}: {exc}") from None
        verb = words[0].lower()
        where = f"{path.name}:{n}"
        if verb not in ("send", "send-at", "wait", "check", "await", "event", "expect-event"):
            raise FarsideError(f"{where}: unknown step {verb!r} (send, send-at, wait, check, await, event, expect-event)")
        body, opts = _options(words[1:])
        try:
            _check_step(gs, verb, body, opts)
        except FarsideError as exc:
            raise FarsideError(f"{where}: {exc}") from None
        steps.append((n, text, words))
    with gs.state.cond:
        since = gs._mark_now()  # `event` steps search from here: the latest send
    for n, text, words in steps:
        verb = words[0].lower()
        body, opts = _options(words[1:])
        timeout = _seconds(opts["timeout"]) if "timeout" in opts else None
        try:
            if verb in ("send", "send-at"):
                with gs.state.cond:
                    since = gs._mark_now()
            if verb == "send":
                reps = gs.send_and_assert_command(body[0], body[1:], timeout)
                detail = ", ".join(r.stage for r in reps)
            elif verb == "send-at":
                from hil.gs.commanding import release_time

                at = release_time(body[0], gs.state)
                track = gs.send_command(body[1], body[2:], at=at)
                assert gs.session is not None
                reps = gs.session.wait_verification(track, timeout or gs.default_timeout, "completed")
                detail = f"stored for release at {at}"
            elif verb == "wait":
                dt = _seconds(body[0])
                time.sleep(dt)
                detail = f"{dt:g} s"
            elif verb == "check":
                name, pred = parse_condition(body, "")
                detail = f"{name} = {gs.assert_telemetry(name, pred)}"
            elif verb == "await":
                name, pred = parse_condition(body, "")
                detail = f"{name} = {gs.await_telemetry(name, pred, timeout)}"
            elif verb == "event":
                ev = gs.await_event(body[0], timeout, since=since)
                with gs.state.cond:
                    since = gs._mark_after(ev)
                detail = event_message(gs.mission, ev)
            else:  # expect-event
                detail = event_message(gs.mission, gs.assert_event(body[0]))
        except FarsideError as exc:
            res = StepResult(n, text, False, str(exc))
            results.append(res)
            report(res)
            raise CheckFailed(f"{path.name}:{n}: `{text}` failed: {exc}", exc.exit_code) from None
        res = StepResult(n, text, True, detail)
        results.append(res)
        report(res)
    return results


def run_python(path: Path, gs: GroundApi) -> None:
    scope: dict[str, object] = {
        "gs": gs, "__name__": "__procedure__", "__file__": str(path),
        "equal_to": api_mod.equal_to, "greater_than": api_mod.greater_than,
        "less_than": api_mod.less_than, "within": api_mod.within, "CheckFailed": CheckFailed,
    }
    code = compile(path.read_text(), str(path), "exec")
    try:
        exec(code, scope)
        run = scope.get("run")
        if callable(run):
            run(gs)
    except FarsideError:
        raise
    except AssertionError as exc:
        raise CheckFailed(f"{path.name}: assertion failed: {exc}") from None
    except Exception as exc:
        raise CheckFailed(f"{path.name}: {type(exc).__name__}: {exc}") from None


def run_procedure(path: Path, gs: GroundApi, report: Callable[[StepResult], None]) -> None:
    if not path.exists():
        raise FarsideError(f"no procedure file {path}")
    if path.suffix == ".py":
        run_python(path, gs)
    else:
        run_plain(path, gs, report)
