"""A mission flown from Yamcs: the rover on a board, `farside relay` in front of it, Yamcs
on the relay's ground side, and yamcs-client as the operator.

    rover (virtual board pty) <-> farside relay --ground udp:TM:TC <-> Yamcs (COP-1, SDLS)
                                                                      ^ yamcs-client

`Station` starts what is missing (a flashed virtual board, the relay, Yamcs) as their own
processes and stops what it started. With `emulated=True` the rover is on an emulated Pico
(the rp2 firmware on an emulated RP2040): flashed with the key setting or fresh keys (a Pico
never takes the dev keys), and Yamcs's security association given the same key. `Flight` is the operator: commands through Yamcs's
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
VERIFIER_SETTLE_S = 5.0  # after CommandComplete, how long a verifier may stay PENDING
AUTH_GRACE_S = 30.0  # a command with no report this long while the rover rejects TC frames: refused
COMMAND_POLL_S = 1.0  # how often a command's wait looks at the rover's rejections


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


def _folder_keys(folder: Path, key_file: Path) -> list[tuple[Path, bytes]]:
    """Each SDLS key file of the Yamcs configuration in `folder`, with the key `key_file`
    holds for its SA. A folder in clear mode is refused: farside's rover authenticates every
    TC frame, so it would drop each one and every command would wait out its verifiers."""
    from hil.yamcs.config import sdls_key_from_setting

    key_paths = sorted((Path(folder) / "etc").glob("sdls-key-*.bin"))
    if not key_paths:
        raise FarsideError(f"{folder}: Yamcs is set up in clear mode, which the rover refuses: "
                           "write the folder without --clear")
    out = []
    for path in key_paths:
        spi = int(path.stem.rsplit("-", 1)[1])
        key, why = sdls_key_from_setting(key_file, spi)
        if key is None:
            raise FarsideError(f"{why}: Yamcs cannot command this rover")
        out.append((path, key))
    return out


def install_sdls_key(folder: Path, key_file: Path) -> None:
    """Give the Yamcs configuration in `folder` the AES-256-GCM keys of `key_file` (each SA
    it has a key for), so it commands a rover flashed with that key file."""
    for path, key in _folder_keys(folder, key_file):
        path.write_bytes(key)
        path.chmod(0o600)


def check_sdls_key(folder: Path, key_file: Path) -> None:
    """Refuse, in one line, a Yamcs folder whose keys are not those of `key_file`, the keys
    a virtual board is about to be flashed with (or a folder in clear mode)."""
    for path, key in _folder_keys(folder, key_file):
        if path.read_bytes() != key:
            spi = path.stem.rsplit("-", 1)[1]
            raise FarsideError(f"{folder}: Yamcs holds another key for SA {spi} than {key_file}, the keys the rover "
                               "is flashed with: give fly the folder's keys (--keys), or write the folder again "
                               f"with `farside yamcs init --keys {key_file}`")


@dataclass
class Station:
    """Yamcs, the relay and (unless `rover_port` is given) a flashed virtual board, or with
    `emulated` an emulated Pico. `keys`: the key setting the board is flashed with (none:
    $FARSIDE_KEYS, else the dev keys, or fresh keys for a Pico); a virtual board's must be
    the keys the Yamcs folder holds."""

    folder: Path
    rover_port: str | None = None
    profile: str = "lab"
    seed: int = 0
    board: str = "sim"
    heapsize: str | None = None  # the virtual board's heap (default: the board's budget)
    emulated: bool = False
    keys: str | Path | None = None
    pace: str = "realtime"  # the emulated Pico's clock against the wall's
    key_file: Path | None = None  # the keys the rover this station started was flashed with
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
        if self.emulated and self.board.startswith("sim"):
            self.board = "pico"
        if self.emulated and self.rover_port is None:
            self.key_file = self._pico_keys()
            install_sdls_key(self.folder, self.key_file)
        elif self.rover_port is None:  # a virtual board, flashed with the key setting
            from hil.gs.keys import SIM_BOARDS, resolve_keys

            self.key_file = resolve_keys(self.keys, board=self.board, allow_dev=self.board in SIM_BOARDS).path
            check_sdls_key(self.folder, self.key_file)
        self.server = YamcsServer(self.folder)
        self.server.start()
        try:
            if self.emulated and self.rover_port is None:
                from hil.board import start_board
                from hil.mission.chip import flashed_image

                assert self.key_file is not None
                image = flashed_image(self.folder / "pico", board=self.board, keys=self.key_file)
                self.vboard = start_board(board=self.board, flash_dir=image.parent, emulated=True, pace=self.pace)
                self.rover_port = self.vboard.link_port or self.vboard.port
            elif self.rover_port is None:
                from hil.board import start_board
                from hil.flash import FlashOptions, flash

                self.vboard = start_board(board=self.board, flash_dir=self.folder / "board-flash",
                                          heapsize=self.heapsize)
                flash(FlashOptions(board=self.board, port=self.vboard.port, keys=self.key_file))
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

    def _pico_keys(self) -> Path:
        """The Pico's key file in the station folder: the key setting's, else fresh keys."""
        from hil.gs.keys import load_store, new_store, resolve_keys, write_key_file

        path = self.folder / "pico-keys.json"
        try:
            store = load_store(resolve_keys(self.keys, board=self.board, allow_dev=False).path)
        except FarsideError:
            if self.keys is not None:
                raise
            store = new_store()
        write_key_file(path, store)
        return path

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

    def __init__(self, url: str, instance: str, space: str = SPACE, auth_grace_s: float = AUTH_GRACE_S) -> None:
        from yamcs.client import YamcsClient

        self.auth_grace_s = auth_grace_s
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
        """Issue a command and wait until Yamcs calls it complete (every verifier decided).

        A rover that keeps rejecting TC frames by authentication (its HK tc_auth_rejected
        rising) while the command has gone `auth_grace_s` with no verifier decided (no report
        from the rover) is a one-line FarsideError: Yamcs's TC security is not the rover's (a
        folder in clear mode, or another key), and every command would otherwise wait out its
        whole timeout. (A retransmitted frame the rover already took is rejected as a replay
        too, but then the command's reports come.)"""
        from yamcs.client import TimeoutError as YamcsTimeout

        t0 = time.monotonic()
        rejected0 = self._rejected()
        cmd = self.conn.issue(self.qualified(name), args=args or {})
        deadline = t0 + timeout_s
        while not cmd.is_complete() and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(YamcsTimeout):
                cmd.await_complete(timeout=min(COMMAND_POLL_S, left))
            if time.monotonic() - t0 >= self.auth_grace_s and not cmd.is_complete():
                rejected0 = self._check_refused(name, cmd, rejected0, t0)
        stages = self.settled_stages(cmd)
        return Outcome(name, cmd.id, bool(cmd.is_success()), stages, cmd.error, time.monotonic() - t0)

    @classmethod
    def settled_stages(cls, cmd: Any) -> dict[str, str]:
        """The command's stages (see _stages). Yamcs publishes CommandComplete before it cancels
        the verifiers still pending (its verifiers settle on its own threads): once the command
        is complete, each pending one gets up to VERIFIER_SETTLE_S to be decided."""
        stages = cls._stages(cmd)
        settle = time.monotonic() + VERIFIER_SETTLE_S
        while cmd.is_complete() and time.monotonic() < settle and any(
                stages.get(f"Verifier_{v}", "PENDING") == "PENDING" for v in VERIFIERS):
            time.sleep(0.05)
            stages = cls._stages(cmd)
        return stages

    @staticmethod
    def _stages(cmd: Any) -> dict[str, str]:
        """Every acknowledgment and verifier status the command history holds, by name."""
        stages = {k: str(a.status) for k, a in cmd.acknowledgments.items()}
        for key, value in cmd.attributes.items():
            if key.startswith("Verifier_") and key.endswith("_Status"):
                stages.setdefault(key[: -len("_Status")], str(value))
        return stages

    def _check_refused(self, name: str, cmd: Any, rejected0: int | None, t0: float) -> int | None:
        """Raise when the rover has rejected TC frames since `rejected0` and reported nothing of
        `cmd` (see command); returns the baseline, the first count heard when there was none."""
        stages = self._stages(cmd)
        if any(stages.get(f"Verifier_{v}", "PENDING") not in ("PENDING", "SCHEDULED") for v in VERIFIERS):
            return rejected0  # a report came: the rover took the command
        rejected = self._rejected()
        if rejected0 is None or rejected is None or rejected <= rejected0:
            return rejected0 if rejected0 is not None else rejected
        raise FarsideError(
            f"{name}: the rover rejected {rejected - rejected0} TC frames since it was sent (HK "
            f"tc_auth_rejected) and reported nothing in {time.monotonic() - t0:.0f} s: Yamcs's TC security is "
            "not the rover's (a folder in clear mode, or another key than the rover's key file)")

    def _rejected(self) -> int | None:
        """The rover's count of TC frames rejected by authentication (HK), None before any HK."""
        value = self.parameter("tc_auth_rejected")
        return None if value is None else int(value)

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

    def fresh_hk(self, reports: int = 2, timeout_s: float = 30.0) -> None:
        """Wait until `reports` more HK reports arrived (the rover's uptime moved on), so the
        parameters read next were sampled after what just happened."""
        now = int(self.parameter("uptime_s") or 0)
        self.wait_parameter("uptime_s", lambda v: int(v) >= now + reports, timeout_s)

    def event_mark(self) -> int:
        """A mark in the events received so far (for wait_event's `after`)."""
        with self._events_lock:
            return len(self.events)

    def wait_event(self, event_type: str, after: int = 0, timeout_s: float = 60.0) -> Any:
        """The first Yamcs event of `event_type` received after the mark `after` (events carry
        the rover's clock as their time, so a mark, not a time, says what is new)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._events_lock:
                for ev in self.events[after:]:
                    if ev.event_type == event_type:
                        return ev
            time.sleep(0.5)
        raise FarsideError(f"no {event_type} event within {timeout_s:g} s")

    def close(self) -> None:
        close_subscription(self._event_sub)
        close_subscription(self.conn)
        with contextlib.suppress(Exception):
            self.client.close()


def close_subscription(subscription: Any) -> None:
    """Close a yamcs-client subscription (or command connection) without waiting for it:
    its cancel joins the websocket's reader thread, which sits in select() for up to 10 s
    (websocket-client's read timeout when no ping is set) on a quiet subscription, so an
    operator's close took 8 s. The reader thread is a daemon; nothing more is read from it."""

    def cancel() -> None:
        with contextlib.suppress(Exception):
            subscription.cancel()

    threading.Thread(target=cancel, name="yamcs-close", daemon=True).start()


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


@dataclass
class Step:
    """One step of the mission flown from Yamcs, and what Yamcs showed."""

    name: str
    ok: bool
    detail: str
    outcome: Outcome | None = None


WHEELS = range(1, 7)


def pose(flight: Flight) -> dict[str, float]:
    return {k: float(flight.parameter(k)) for k in ("x_m", "y_m", "heading_deg")}


def fly_mission(flight: Flight, distance_m: float = 3.0, turn_deg: float = 90.0, jam_wheel: int = 3,
                timeout_s: float = 300.0, board: Any = None) -> list[Step]:
    """PING, DRIVE_DISTANCE, TURN, then a wheel jammed and a drive that meets it: each
    command's verifiers from Yamcs's command history, the pose and wheel states from its
    processed parameters, the WHEEL_FAULT from its events. The jam is SIM_INJECT, or with
    `board` (an emulated Pico's handle, whose rp2 rover refuses SIM_INJECT) at its pins."""
    steps: list[Step] = []

    def command(name: str, args: dict[str, Any] | None = None) -> Outcome:
        out = flight.command(name, args, timeout_s)
        stages = ", ".join(f"{v} {out.stages.get('Verifier_' + v, '-')}" for v in VERIFIERS)
        steps.append(Step(name, out.success and out.verifiers_ok(), f"{stages} in {out.seconds:.1f} s", out))
        return out

    flight.wait_parameter("mode", lambda v: v == "STANDBY", timeout_s)
    command("PING")
    start = pose(flight)
    command("DRIVE_DISTANCE", {"distance_m": distance_m, "speed_mph": 200})
    flight.fresh_hk()
    after = pose(flight)
    moved = ((after["x_m"] - start["x_m"]) ** 2 + (after["y_m"] - start["y_m"]) ** 2) ** 0.5
    steps.append(Step("pose after the drive", abs(moved - distance_m) < 0.1 * distance_m + 0.05,
                      f"x {after['x_m']:.3f} m, y {after['y_m']:.3f} m, moved {moved:.3f} m"))
    command("TURN", {"angle_deg": turn_deg})
    flight.fresh_hk()
    turned = pose(flight)
    dh = (turned["heading_deg"] - after["heading_deg"] + 180.0) % 360.0 - 180.0
    steps.append(Step("heading after the turn", abs(dh - turn_deg) < 5.0, f"heading {turned['heading_deg']:.2f} deg"))
    states = [flight.parameter(f"wheel{i}_state") for i in WHEELS]
    steps.append(Step("wheel states", all(s == "OK" for s in states), " ".join(map(str, states))))
    since = flight.event_mark()
    if board is None:
        command("SIM_INJECT", {"fault": "JAM", "wheel": jam_wheel, "value": 1})
    else:
        try:
            board.inject("JAM", jam_wheel, 1.0)
            steps.append(Step("JAM at the pins", True, f"wheel {jam_wheel} jammed at the emulated Pico's pins"))
        except FarsideError as exc:
            steps.append(Step("JAM at the pins", False, str(exc)))
    command("DRIVE_DISTANCE", {"distance_m": distance_m, "speed_mph": 200})
    try:
        ev = flight.wait_event("WHEEL_FAULT", after=since, timeout_s=30)
        steps.append(Step("WHEEL_FAULT event", True, f"{ev.severity}: {ev.message}"))
    except FarsideError as exc:
        steps.append(Step("WHEEL_FAULT event", False, str(exc)))
    flight.fresh_hk()
    states = [flight.parameter(f"wheel{i}_state") for i in WHEELS]
    jammed = states[jam_wheel - 1]
    steps.append(Step("wheel states after the jam", jammed not in ("OK", None) and
                      all(s == "OK" for i, s in enumerate(states, 1) if i != jam_wheel), " ".join(map(str, states))))
    return steps
