"""A mission flown from Yamcs: the rover on a board, `farside relay` in front of it, Yamcs
on the relay's ground side, and yamcs-client as the operator.

    rover (virtual board pty) <-> farside relay --ground udp:TM:TC <-> Yamcs (COP-1, SDLS)
                                                                      ^ yamcs-client

`Station` starts what is missing (a flashed virtual board, the relay, Yamcs) as their own
processes and stops what it started. `Flight` is the operator: commands through Yamcs's
command connection, verifiers read from Yamcs's command history, parameters from the
realtime processor, events from Yamcs's event stream.

    with Station(folder, profile="lab") as st:
        flight = Flight(st.url, st.instance)
        flight.command("PING")
        flight.parameter("x_m")
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import FarsideError
from hil.yamcs.server import YamcsServer

SPACE = "/farside"
VERIFIERS = ("Acceptance", "Start", "Completion")


class RelayProcess:
    """`farside relay` as its own process, ground side on UDP frames."""

    def __init__(self, ground: str, rover: str, profile: str = "lab", seed: int = 0, log: Path | None = None,
                 capture: Path | None = None) -> None:
        self.args = [sys.executable, "-m", "hil.cli", "relay", "--profile", profile, "--ground", ground,
                     "--rover", rover, "--seed", str(seed), "--quiet", "--interval", "1"]
        if capture is not None:
            self.args += ["--capture", str(capture)]
        self.log = log
        self.proc: subprocess.Popen[str] | None = None
        self.stats_path: Path | None = None

    def start(self, timeout_s: float = 20.0) -> None:
        args = list(self.args)
        if self.log is not None:
            self.stats_path = self.log.with_suffix(".json")
            args += ["--stats-json", str(self.stats_path)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        assert self.proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if line.startswith("rover:"):
                threading.Thread(target=self._drain, daemon=True).start()
                return
        self.stop()
        raise FarsideError(f"farside relay did not start: {' / '.join(lines[-3:]) or 'no output'}")

    def _drain(self) -> None:
        proc = self.proc
        if proc is None or proc.stdout is None:
            return
        with contextlib.suppress(ValueError, OSError):
            for line in proc.stdout:
                if self.log is not None:
                    with open(self.log, "a") as f:
                        f.write(line)

    def stats(self) -> dict[str, Any]:
        import json

        if self.stats_path is None:
            return {}
        try:
            return dict(json.loads(self.stats_path.read_text()))
        except (OSError, ValueError):
            return {}

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        import signal

        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Station:
    """Yamcs, the relay and (unless `rover_port` is given) a flashed virtual board."""

    folder: Path
    rover_port: str | None = None
    profile: str = "lab"
    seed: int = 0
    board: str = "sim"
    server: YamcsServer | None = None
    relay: RelayProcess | None = None
    vboard: Any = None
    started: list[str] = field(default_factory=list)
    yamcs_start_s: float | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"localhost:{self.server.http_port}"

    @property
    def instance(self) -> str:
        assert self.server is not None
        return self.server.instance

    def start(self) -> Station:
        self.folder = Path(self.folder)
        self.server = YamcsServer(self.folder)
        self.server.start()
        try:
            if self.rover_port is None:
                from hil.mission.realtime import start_flashed_board

                self.vboard = start_flashed_board(self.board, self.folder / "board")
                self.rover_port = self.vboard.link_port or self.vboard.port
            s = self.server.summary
            self.relay = RelayProcess(f"udp:{s['tm_port']}:{s['tc_port']}", str(self.rover_port), self.profile,
                                      self.seed, self.folder / "relay.log", self.folder / "relay.capture")
            self.relay.start()
            self.yamcs_start_s = self.server.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        if self.server is not None:
            self.server.stop()
        if self.vboard is not None:
            self.vboard.stop()
            self.vboard = None

    def __enter__(self) -> Station:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Outcome:
    """One command through Yamcs: its id, whether it succeeded, and every acknowledgment
    and verifier stage Yamcs's command history recorded (name -> status)."""

    name: str
    id: str
    success: bool
    stages: dict[str, str]
    error: str | None
    seconds: float

    def verifiers_ok(self) -> bool:
        return all(self.stages.get(f"Verifier_{v}") == "OK" for v in VERIFIERS)


class Flight:
    """The operator at Yamcs, through yamcs-client (see the module docstring)."""

    def __init__(self, url: str, instance: str, space: str = SPACE) -> None:
        from yamcs.client import YamcsClient

        self.client = YamcsClient(url)
        self.instance = instance
        self.space = space
        self.processor = self.client.get_processor(instance, "realtime")
        self.conn = self.processor.create_command_connection()
        self.events: list[Any] = []
        self._events_lock = threading.Lock()
        self._event_sub = self.client.create_event_subscription(instance, on_data=self._on_event)

    def _on_event(self, event: Any) -> None:
        with self._events_lock:
            self.events.append(event)

    def qualified(self, name: str) -> str:
        return name if name.startswith("/") else f"{self.space}/{name}"

    def command(self, name: str, args: dict[str, Any] | None = None, timeout_s: float = 120.0) -> Outcome:
        """Issue a command and wait until Yamcs calls it complete (every verifier decided)."""
        from yamcs.client import TimeoutError as YamcsTimeout

        t0 = time.monotonic()
        cmd = self.conn.issue(self.qualified(name), args=args or {})
        with contextlib.suppress(YamcsTimeout):
            cmd.await_complete(timeout=timeout_s)
        stages = {k: str(a.status) for k, a in cmd.acknowledgments.items()}
        for key, value in cmd.attributes.items():
            if key.startswith("Verifier_") and key.endswith("_Status"):
                stages.setdefault(key[: -len("_Status")], str(value))
        return Outcome(name, cmd.id, bool(cmd.is_success()), stages, cmd.error, time.monotonic() - t0)

    def parameter(self, name: str) -> Any:
        """The latest engineering value Yamcs's realtime processor holds (None if none yet)."""
        pv = self.processor.get_parameter_value(self.qualified(name))
        return None if pv is None else pv.eng_value

    def wait_parameter(self, name: str, ok: Any, timeout_s: float = 60.0) -> Any:
        """Wait until `ok(value)` holds for a parameter; returns the value."""
        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            value = self.parameter(name)
            if value is not None and ok(value):
                return value
            time.sleep(0.5)
        raise FarsideError(f"{name}: still {value!r} after {timeout_s:g} s")

    def wait_event(self, event_type: str, after: float = 0.0, timeout_s: float = 60.0) -> Any:
        """The first Yamcs event of `event_type` generated after UNIX time `after`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._events_lock:
                for ev in self.events:
                    if ev.event_type == event_type and ev.generation_time.timestamp() >= after:
                        return ev
            time.sleep(0.5)
        raise FarsideError(f"no {event_type} event within {timeout_s:g} s")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._event_sub.cancel()
        with contextlib.suppress(Exception):
            self.conn.cancel()
        with contextlib.suppress(Exception):
            self.client.close()


def archive_tm_frames(archive: Path | str) -> list[bytes]:
    """The TM frames an archive recorded, in order (what `farside gs replay` plays back)."""
    from hil.gs.archive import KIND_TM, read_records

    return [rec.payload for rec in read_records(archive, {KIND_TM})]


def send_frames(
    frames: list[bytes], port: int, host: str = "127.0.0.1", frames_per_s: float = 0.0,
    received: Callable[[], int] | None = None, window: int = 64, timeout_s: float = 60.0,
) -> float:
    """Send TM frames to a Yamcs frame link, one datagram each; returns the seconds it took.

    UDP has no flow control: a burst larger than the receiver's socket buffer is lost while
    Yamcs is busy. With `received` (the link's count of frames in, read from Yamcs's API, at
    its value before this replay subtracted) at most `window` frames are ever in flight, so
    none is lost and the pace is Yamcs's own; `frames_per_s` (0: no limit) caps it."""
    import socket

    t0 = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, frame in enumerate(frames):
            if received is not None and i % 16 == 0:
                deadline = time.monotonic() + timeout_s
                while i - received() >= window:
                    if time.monotonic() > deadline:
                        raise FarsideError(f"the frame link took {received()} of {i} frames sent in {timeout_s:g} s")
                    time.sleep(0.005)
            s.sendto(frame, (host, port))
            if frames_per_s > 0:
                delay = t0 + (i + 1) / frames_per_s - time.monotonic()
                if delay > 0.002:
                    time.sleep(delay)
    return time.monotonic() - t0
