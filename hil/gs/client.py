"""A client of the ground-station service (`hil.gs.service`): what `farside gs send|watch|shell|run|plot` use.

    rs = connect({"link": "/dev/ttyACM0", ...}, topics=("commands", "link"))
    entry = rs.submit("PING", {})                     # POST /api/commands
    final = rs.follow(entry["id"], timeout=30, on_stage=print)

`connect` finds the service of the link in the registry; with none running it starts one
embedded in this process for the client's lifetime (registered, so others can join it).
`RemoteSession` looks like a `Session` to watch, the shell and procedures: a local
`GroundState` fed by the service's packet stream, commands sent over HTTP and followed by
the service's stage reports. HTTP requests use urllib; the WebSocket, aiohttp on a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from hil.errors import FarsideError
from hil.gs.link import CommandTrack
from hil.gs.mission import Mission, command_text
from hil.gs.registry import Entry, lookup
from hil.gs.session import (
    EXIT_COMPLETION_FAILED,
    EXIT_REJECTED,
    EXIT_START_FAILED,
    EXIT_TIMEOUT,
    VerificationFailed,
)
from hil.gs.state import GroundState, Verification
from protocols.clcw import Clcw

EXIT_BY_OUTCOME = {"REJECTED": EXIT_REJECTED, "START_FAILED": EXIT_START_FAILED,
                   "COMPLETION_FAILED": EXIT_COMPLETION_FAILED, "FAILED": EXIT_REJECTED}
REPORT_STAGES = {"ACCEPTED": "accepted", "STARTED": "started", "COMPLETED": "completed", "PROGRESS": "progress",
                 "REJECTED": "rejected", "START_FAILED": "start_failed", "COMPLETION_FAILED": "completion_failed"}
UNTIL = {"accepted": ("ACCEPTED", "STARTED", "COMPLETED"), "started": ("STARTED", "COMPLETED"), "completed": ("COMPLETED",)}
DRIVE_COMMANDS = ("DRIVE_DISTANCE", "DRIVE_ARC", "TURN")
DEFAULT_TRACK_M = 1.0  # the rover's track (boards/*.json geometry.track_m): TURN's wheel path
TIMEOUT_MARGIN_S = 30.0
KEEP_COMMANDS = 2000  # command objects a client keeps from the stream


def expected_duration_s(mission: Mission, name: str, args: dict[str, Any], track_m: float = DEFAULT_TRACK_M) -> float:
    """How long a command should take on the rover: a drive's distance / speed (capped by the
    speed governor, parameter max_speed_mph), a turn's wheel path at the governor; else 0."""
    gov_p = mission.parameters_by_name.get("max_speed_mph")
    governor = gov_p.default if gov_p is not None else 200.0
    name = name.upper()
    if name in ("DRIVE_DISTANCE", "DRIVE_ARC"):
        speed = min(float(args.get("speed_mph", governor)), governor)
        return abs(float(args.get("distance_m", 0.0))) / max(speed, 1e-6) * 3600.0
    if name == "TURN":
        path_m = abs(math.radians(float(args.get("angle_deg", 0.0)))) * track_m / 2
        return path_m / governor * 3600.0
    return 0.0


def default_timeout_s(mission: Mission, name: str, args: dict[str, Any], rtt_s: float | None) -> float:
    """The expected duration with a quarter more for ramps and trims, the link's round trip,
    and a margin."""
    return expected_duration_s(mission, name, args) * 1.25 + (rtt_s or 0.0) * 2 + TIMEOUT_MARGIN_S


class ServiceClient:
    """Plain HTTP JSON calls to a service."""

    def __init__(self, entry: Entry, timeout_s: float = 30.0) -> None:
        self.entry = entry
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.entry.http + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.entry.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                msg = json.loads(exc.read()).get("error") or exc.reason
            except (ValueError, AttributeError):
                msg = exc.reason
            raise FarsideError(str(msg)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise FarsideError(f"ground-station service at {self.entry.http}: {getattr(exc, 'reason', exc)}") from None

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self._call("POST", path, body if body is not None else {})


class Stream:
    """A WebSocket subscription read on its own thread; `on_message` gets each object."""

    def __init__(self, entry: Entry, topics: Iterable[str], on_message: Callable[[dict[str, Any]], None]) -> None:
        self.entry = entry
        self.topics = ",".join(topics)
        self.on_message = on_message
        self.closed = threading.Event()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="gs-stream", daemon=True)
        self._thread.start()
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        try:
            asyncio.run_coroutine_threadsafe(self._connect(), self.loop).result(timeout=10)
        except Exception as exc:
            self.close()
            raise FarsideError(f"ground-station service at {entry.http}: WebSocket: {exc}") from None
        self._reader = asyncio.run_coroutine_threadsafe(self._read(), self.loop)

    async def _connect(self) -> None:
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(
            f"{self.entry.http}/ws?subscribe={self.topics}", headers={"Authorization": f"Bearer {self.entry.token}"},
            heartbeat=20.0, max_msg_size=0,
        )

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for msg in self._ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.on_message(json.loads(msg.data))
        finally:
            self.closed.set()

    async def _close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()

    def close(self) -> None:
        if self.loop.is_closed():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()
        self.closed.set()


LINK_FIELDS = {"up": "up", "url": "url", "frames_good": "frames_ok", "frames_bad": "frames_bad",
               "frames_lost": "frames_lost", "tc_frames_sent": "tc_frames_sent", "reconnects": "reconnects",
               "last_contact": "last_contact", "note": "note", "tm_auth_failed": "tm_auth_failed",
               "cop_state": "cop_state", "cop_queued": "cop_queued", "cop_sent": "cop_sent"}


class RemoteSession:
    """A service's link as a `Session`-like object for the CLI's tools (see the module docstring)."""

    def __init__(
        self,
        entry: Entry,
        mission: Mission,
        *,
        topics: Iterable[str] = ("packets", "link", "commands"),
        client: str = "",
        force: bool = False,
        embedded: Any = None,
    ) -> None:
        self.entry = entry
        self.url = entry.url
        self.mission = mission
        self.force = force
        self.client = client or f"cli-{id(self):x}"
        self.topics = frozenset(topics)
        self.embedded = embedded
        self.http = ServiceClient(entry)
        self.state = GroundState(mission)
        self.commands: dict[int, dict[str, Any]] = {}
        self.by_request: dict[tuple[int, int], int] = {}
        self.status: dict[str, Any] = {}
        self._checked = False
        self.stream = Stream(entry, topics, self._on_message)
        self.status = self.http.get("/api/status")
        self._apply_link(self.status["link"])

    # --- the stream -------------------------------------------------------------------------
    def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        st = self.state
        if kind == "packet":
            st.on_packet(bytes.fromhex(msg["hex"]), float(msg["t"]))
        elif kind == "link":
            self._apply_link(msg)
        elif kind == "command":
            with st.cond:
                self.commands[int(msg["id"])] = msg
                if len(self.commands) > KEEP_COMMANDS:  # every client's commands stream by
                    for cid in list(self.commands)[: KEEP_COMMANDS // 2]:
                        del self.commands[cid]
                st.cond.notify_all()

    def _apply_link(self, link: dict[str, Any]) -> None:
        with self.state.cond:
            lk = self.state.link
            for src, dst in LINK_FIELDS.items():
                if src in link:
                    setattr(lk, dst, link[src])
            if link.get("clcw") is not None:
                lk.clcw = Clcw.from_int(int(link["clcw"]))
            self.state.cond.notify_all()

    # --- commanding -----------------------------------------------------------------------------
    @property
    def archive_folder(self) -> str | None:
        folder = self.http.get("/api/status").get("archive")
        return str(folder) if folder else None

    def check_dictionary(self, timeout: float = 10.0) -> int:
        """Wait for the rover's dictionary hash (as the service last heard it) and refuse to
        command on a mismatch with this client's dictionary (unless forced); the rover's hash."""
        deadline = time.monotonic() + timeout
        status = self.status
        while status.get("rover_dictionary_hash") is None:
            if time.monotonic() >= deadline:
                link = status.get("link", {})
                if not link.get("up"):
                    raise FarsideError(f"link {self.url} is down: {link.get('note') or 'no connection'}")
                raise FarsideError(f"no telemetry with the rover's dictionary hash within {timeout:g} s on {self.url} "
                                   f"({link.get('frames_good', 0)} frames received)")
            time.sleep(0.05)
            status = self.status = self.http.get("/api/status")
        rover = int(status["rover_dictionary_hash"], 16)
        if not self.force:
            if rover != self.mission.hash:
                raise FarsideError(
                    f"dictionary mismatch: rover has {rover:08x}, ground has {self.mission.hash:08x} "
                    f"({self.mission.path}); refusing to command (use --force to override)"
                )
            if status.get("dictionary_hash") != f"{self.mission.hash:08x}":
                raise FarsideError(
                    f"dictionary mismatch: the service on {self.url} has {status.get('dictionary_hash')}, this client "
                    f"has {self.mission.hash:08x} ({self.mission.path}); refusing to command (use --force to override)"
                )
        self._checked = True
        if "packets" in self.topics:
            # the service has heard the rover; let its telemetry reach this client's state too,
            # so a procedure's first check sees what the service saw
            with self.state.cond:
                while self.state.hk_count == 0 and time.monotonic() < deadline + 2.0:
                    self.state.cond.wait(0.05)
        return rover

    def submit(self, name: str, args: dict[str, Any], at: str | int | None = None) -> dict[str, Any]:
        """POST a command; the service's command object (FarsideError with its one-line reason)."""
        if not self._checked:
            self.check_dictionary()
        body: dict[str, Any] = {"name": name, "args": args, "client": self.client}
        if at is not None:
            body["at"] = str(at)
        cmd = self.http.post("/api/commands", body)
        with self.state.cond:
            known = self.commands.get(cmd["id"])
            if known is None or len(known["stages"]) < len(cmd["stages"]):
                self.commands[cmd["id"]] = cmd
        if cmd.get("request_id"):
            self.by_request[(int(cmd["request_id"][0]), int(cmd["request_id"][1]))] = int(cmd["id"])
        return cmd

    def follow(
        self,
        cid: int,
        timeout: float,
        until: str = "completed",
        on_stage: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Wait for command `cid` to reach `until` (or fail), calling `on_stage` with each new
        stage; the command object. VerificationFailed (exit code by stage) on a failure or timeout."""
        deadline = time.monotonic() + timeout
        shown = 0
        last_poll = time.monotonic()
        while True:
            with self.state.cond:
                cmd = self.commands.get(cid)
                if cmd is None or len(cmd["stages"]) <= shown:
                    self.state.cond.wait(0.1)
                    cmd = self.commands.get(cid)
            streamed = "commands" in self.topics and not self.stream.closed.is_set()
            if cmd is None or (not streamed and time.monotonic() - last_poll > 0.2):
                cmd = self.http.get(f"/api/commands/{cid}")  # no stream: ask
                last_poll = time.monotonic()
                with self.state.cond:
                    self.commands[cid] = cmd
            stages = cmd["stages"]
            for s in stages[shown:]:
                if on_stage is not None:
                    on_stage(s)
            shown = max(shown, len(stages))
            names = {s["stage"] for s in stages}
            outcome = cmd.get("outcome")
            if outcome in EXIT_BY_OUTCOME:
                raise VerificationFailed(cmd.get("text") or f"{describe(cmd)}: {outcome.lower()}", EXIT_BY_OUTCOME[outcome])
            if names & set(UNTIL[until]):
                return cmd
            if time.monotonic() >= deadline:
                if cmd.get("state") == "unknown":  # sent, never acknowledged: it may have run
                    unknown = next(s for s in reversed(stages) if s["stage"] == "UNKNOWN")
                    raise VerificationFailed(cmd.get("text") or f"{describe(cmd)}: outcome unknown ({unknown['detail']})",
                                             EXIT_TIMEOUT)
                seen = ", ".join(REPORT_STAGES[s["stage"]] for s in stages if s["stage"] in REPORT_STAGES) or "no report"
                raise VerificationFailed(f"{describe(cmd)}: timed out after {timeout:g} s waiting for '{until}' (seen: {seen})",
                                         EXIT_TIMEOUT)

    # the Session-like face the shell and procedures use
    def send_command(self, name: str, args: dict[str, Any] | None = None, *, at: int | None = None) -> CommandTrack:
        cmd = self.submit(name, dict(args or {}), at)
        rid = tuple(cmd["request_id"]) if cmd.get("request_id") else (0, int(cmd["id"]))
        track = CommandTrack(cmd["name"], cmd["args"], (int(rid[0]), int(rid[1])), b"", float(cmd["t0"]),
                             label=describe(cmd))
        track.fop = None
        self.by_request[track.request_id] = int(cmd["id"])
        return track

    def wait_verification(self, track: CommandTrack, timeout: float, until: str = "completed") -> list[Verification]:
        cid = self.by_request[track.request_id]
        cmd = self.follow(cid, timeout, until)
        reps = [Verification(s["t"], REPORT_STAGES[s["stage"]], None) for s in cmd["stages"] if s["stage"] in REPORT_STAGES]
        track.reports = reps
        return reps

    def close(self) -> None:
        self.stream.close()
        if self.embedded is not None:
            self.embedded.close()
            self.embedded = None

    def __enter__(self) -> RemoteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe(cmd: dict[str, Any]) -> str:
    """The service's command object as the operator reads it (its label, enums by name)."""
    return str(cmd.get("label") or command_text(cmd["name"], cmd["args"]))


def connect(opts: dict[str, Any], *, topics: Iterable[str] = ("packets", "link", "commands"), client: str = "") -> RemoteSession:
    """The service of `opts["link"]` (from the registry), or one started embedded here."""
    from hil.gs.service import EmbeddedService, ServiceOptions, build_service

    o = ServiceOptions.from_opts(opts)
    mission = Mission.load(o.dictionary)
    embedded = None
    deadline = time.monotonic() + 5.0
    entry = lookup(o.link)
    while entry is None:
        try:
            embedded = EmbeddedService(build_service(o))
            entry = embedded.entry
        except FarsideError as exc:
            if "already served" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # another client is starting one: join it once it is published
            entry = lookup(o.link)
    try:
        return RemoteSession(entry, mission, topics=topics, client=client, force=o.force, embedded=embedded)
    except BaseException:
        if embedded is not None:
            embedded.close()
        raise
