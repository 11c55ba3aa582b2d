"""The ground-station service: one process owns a link; every tool is its client.

    farside gs serve --link /dev/ttyACM0          # prints the console URL
    curl -s localhost:PORT/api/status

The service owns a `Session` (its I/O thread: TM deframing and decoding, the archive, FOP-1,
SDLS, limits, events, link statistics), the command queue with each command's stages
(`hil.gs.commandlog`), and serves HTTP + WebSocket JSON with aiohttp (see hil/gs/README.md,
"API"). aiohttp because it is one well-kept asyncio library for the server, the WebSocket
and the client side alike.

Registry (`hil.gs.registry`): a JSON file per link names the running service, and a lock held
for its life refuses a second one. FOP-1's V(S) and the TC sequence count are saved
atomically after every TC frame, the command log after every stage, so a service restarted
after a crash resumes the link and resolves what was in flight.

Auth: requests from loopback pass, unless `require_token`, if their Host is a loopback name
and a browser's Origin is the service's own page (no other web page, no rebound DNS name);
anything else must carry `Authorization: Bearer TOKEN` (or `?token=TOKEN`, for the
WebSocket and the console page).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import threading
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from hil.errors import FarsideError
from hil.gs.archive import part_paths, read_records
from hil.gs.commandlog import CommandEntry, CommandLog
from hil.gs.registry import Entry, Registration, claim, new_token, read_json, write_atomic
from hil.gs.session import Session
from protocols.errors import ProtocolError

WEB_DIR = Path(__file__).with_name("web")
TOPICS = ("telemetry", "events", "commands", "link", "packets")
DEFAULT_TOPICS = frozenset(TOPICS) - {"packets"}
LIMIT_NAMES = {"ok": "ok", "yellow": "warning", "red": "critical"}
PUS_HK = (3, 25)  # TM service/subservice of a housekeeping report
PUS_EVENTS = 5  # TM service of events
JOIN_EVENTS = 100  # event packets a client joining the packet stream is given first
TRACK_KEEP = 20000  # HK positions the ground keeps for the traverse (the archive has them all)
SUBSCRIBER_QUEUE = 4096  # messages a slow WebSocket client may lag before the oldest are dropped


class ServiceSession(Session):
    """A `Session` that tells the service about each TM packet and TC frame, and keeps FOP-1's
    V(S) in a file so a restart resumes it."""

    def __init__(self, *a: Any, state_path: Path | None = None, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.state_path = state_path
        self.packets: deque[tuple[float, bytes]] = deque(maxlen=10000)
        self.last_hk: tuple[float, bytes] | None = None
        self.recent_events: deque[tuple[float, bytes]] = deque(maxlen=JOIN_EVENTS)
        self.notify: Callable[[], None] = lambda: None
        saved = read_json(state_path) if state_path is not None else None
        if isinstance(saved, dict) and "vs" in saved:
            self.fop.vs = int(saved["vs"]) & 0xFF
            self.fop.nnr = self.fop.vs
            if "tc_seq" in saved:
                self._tc_seq = (int(saved["tc_seq"]) + 1) & 0x3FFF

    def _on_packets(self, packets: list[bytes], t: float) -> None:
        for p in packets:
            self.packets.append((t, p))
        self.notify()

    def published(self, t: float, p: bytes) -> None:
        """A packet the service has passed on (its loop): kept if a joining client needs it."""
        if len(p) > 8 and p[7] == PUS_HK[0] and p[8] == PUS_HK[1]:
            self.last_hk = (t, p)
        elif len(p) > 8 and p[7] == PUS_EVENTS:
            self.recent_events.append((t, p))

    def backlog(self) -> list[tuple[float, bytes]]:
        """What a client joining the packet stream starts from: recent events, the latest HK."""
        out = list(self.recent_events)
        if self.last_hk is not None:
            out.append(self.last_hk)
        return out

    def record_tc(self, data: bytes) -> None:
        super().record_tc(data)
        if self.state_path is not None:
            write_atomic(self.state_path, json.dumps({"vs": self.fop.vs, "tc_seq": self._tc_seq, "t": time.time()}))
        self.notify()


@dataclass(eq=False)  # kept in a set: hashed by identity
class Subscriber:
    """One WebSocket client: its topics and its outgoing queue (oldest dropped when full)."""

    ws: web.WebSocketResponse
    topics: frozenset[str] = DEFAULT_TOPICS
    queue: deque[str] = field(default_factory=lambda: deque(maxlen=SUBSCRIBER_QUEUE))
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, text: str) -> None:
        self.queue.append(text)
        self.wake.set()

    async def pump(self) -> None:
        while not self.ws.closed:
            await self.wake.wait()
            self.wake.clear()
            while self.queue:
                await self.ws.send_str(self.queue.popleft())


def is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def same_machine_request(headers: Any) -> bool:
    """Whether a loopback request is the operator's own: its Host names this machine (not a
    rebound DNS name) and a browser's Origin, if any, is the service's own page. A web page
    from elsewhere open in the operator's browser must not command the rover."""
    host = str(headers.get("Host", ""))
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if name not in LOOPBACK_NAMES:
        return False
    origin = headers.get("Origin")
    return origin is None or str(origin).split("://", 1)[-1] == host


def authorized(remote: str | None, headers: Any, query: Any, token: str, require_token: bool = False) -> bool:
    """Whether a request may pass: the operator's own from loopback (unless a token is
    required), or one with the right token."""
    if not require_token and is_loopback(remote) and same_machine_request(headers):
        return True
    auth = headers.get("Authorization", "")
    given = auth[7:].strip() if auth.startswith("Bearer ") else query.get("token", "")
    return bool(given) and secrets.compare_digest(str(given), token)


class GsService:
    """The service around one `ServiceSession` (see the module docstring); runs on an asyncio loop."""

    def __init__(
        self,
        session: ServiceSession,
        registration: Registration | None,
        *,
        archive_root: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        require_token: bool = False,
        connect_timeout: float = 10.0,
    ) -> None:
        self.session = session
        self.registration = registration
        self.archive_root = archive_root
        self.host = host
        self.port = port
        self.token = token or new_token()
        self.require_token = require_token
        self.connect_timeout = connect_timeout
        self._log_lines = 0
        persist = self._persist_command if registration is not None else None
        self.log = CommandLog(session, persist=persist)
        if registration is not None:
            self.log.restore(registration.commands_path)
        self.held = False
        self._held: list[CommandEntry] = []
        self._queue_lock = threading.Lock()
        self.subscribers: set[Subscriber] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runner: web.AppRunner | None = None
        self.entry: Entry | None = None
        self._kicked = False
        self._last_hk = -1
        self._last_event = session.state.event_seq
        self._last_link: dict[str, Any] = {}
        self._ticker: asyncio.Task[None] | None = None
        self.rtt_s: float | None = None
        self.fanout_dropped = 0

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> Entry:
        """Bind, publish the registry entry and start following the session."""
        self.loop = asyncio.get_running_loop()
        self.session.notify = self._kick
        app = web.Application(middlewares=[self._errors, self._auth])
        self._routes(app)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port)
        await site.start()
        port = self.runner.addresses[0][1]
        host = self.host if ":" not in self.host else f"[{self.host}]"
        http = f"http://{host}:{port}"
        if self.registration is not None:
            self.entry = self.registration.publish(http, self.token)
        else:
            self.entry = Entry(self.session.url, os.getpid(), http, self.token)
        self._ticker = asyncio.create_task(self._tick())
        return self.entry

    def console_url(self) -> str:
        assert self.entry is not None
        return f"{self.entry.http}/?token={self.token}" if self.require_token or not is_loopback(self.host) else f"{self.entry.http}/"

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for sub in list(self.subscribers):
            await sub.ws.close()
        if self.runner is not None:
            await self.runner.cleanup()
        self.session.notify = lambda: None
        self.session.close()
        if self.registration is not None:
            self.registration.release()

    # --- following the session --------------------------------------------------------------
    def _kick(self) -> None:
        """From the link thread: something arrived or went out; update on the loop."""
        if self._kicked or self.loop is None:
            return
        self._kicked = True
        with contextlib.suppress(RuntimeError):  # the loop closed under us
            self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._kicked = False
        s, st = self.session, self.session.state
        wanted = set().union(*(sub.topics for sub in self.subscribers)) if self.subscribers else set()
        while s.packets:
            t, p = s.packets.popleft()
            s.published(t, p)
            if "packets" in wanted:
                self._publish("packets", {"type": "packet", "t": t, "hex": p.hex()})
        if st.hk_count != self._last_hk:
            # one message per HK report, unless several arrived in one burst: then the latest
            self._last_hk = st.hk_count
            if "telemetry" in wanted:
                self._publish("telemetry", {"type": "telemetry", **self.telemetry()})
            with st.cond:
                if len(st.track) > 2 * TRACK_KEEP:
                    del st.track[:-TRACK_KEEP]
        if st.event_seq != self._last_event:
            with st.cond:
                new = [e for e in st.events if e.seq > self._last_event]
                self._last_event = st.event_seq
            for e in new:
                self._publish("events", {"type": "event", **event_json(e)})
        self._update_commands()

    def _update_commands(self) -> None:
        for e in self.log.update():
            self._note_rtt(e)
            self._publish("commands", {"type": "command", **e.json()})

    def _note_rtt(self, e: CommandEntry) -> None:
        sent = next((s for s in e.stages if s.stage == "SENT"), None)
        acc = next((s for s in e.stages if s.stage == "ACCEPTED"), None)
        if sent is not None and acc is not None and acc is e.stages[-1]:
            self.rtt_s = max(0.0, acc.t - sent.t)

    async def _tick(self) -> None:
        """Link status every second (and on change), FOP-1 outcomes, held commands."""
        n = 0
        while True:
            await asyncio.sleep(0.1)
            n += 1
            self._update_commands()
            link = self.link_status()
            if n % 10 == 0 or link != self._last_link:
                self._last_link = link
                self._publish("link", {"type": "link", **link})

    def _publish(self, topic: str, obj: dict[str, Any]) -> None:
        if not self.subscribers:
            return
        text = json.dumps(obj)
        for sub in self.subscribers:
            if topic in sub.topics:
                if len(sub.queue) == sub.queue.maxlen:
                    self.fanout_dropped += 1
                sub.put(text)

    # --- views -------------------------------------------------------------------------------
    def link_status(self) -> dict[str, Any]:
        st = self.session.state
        with st.cond:
            lk = st.link
            out = {
                "url": self.session.url, "up": lk.up, "frames_good": lk.frames_ok, "frames_bad": lk.frames_bad,
                "frames_lost": lk.frames_lost, "tc_frames_sent": lk.tc_frames_sent, "reconnects": lk.reconnects,
                "last_contact": lk.last_contact, "note": lk.note,
                "clcw": lk.clcw.to_int() if lk.clcw is not None else None,
                "tm_auth_failed": lk.tm_auth_failed, "rtt_s": self.rtt_s,
                "cop_state": lk.cop_state, "cop_queued": lk.cop_queued, "cop_sent": lk.cop_sent,
            }
        out["fop"] = self.fop_status()
        return out

    def fop_status(self) -> dict[str, Any]:
        s = self.session
        with s._lock:
            fop = s.fop
            return {
                "state": fop.state.value, "vs": fop.vs, "nn_r": fop.nnr, "queue": fop.queued_count,
                "transmitted": fop.sent_count, "alert": fop.alert.value if fop.alert else None,
                "sdls_spi": s.spi, "sdls_seq": s.security.seq,
            }

    def status(self) -> dict[str, Any]:
        s, st = self.session, self.session.state
        link = self.link_status()
        with st.cond:
            rover_time = st.hk.get("rover_time_s")
            mode = st.mode
            rover_hash = st.rover_dict_hash
        return {
            "url": s.url, "pid": os.getpid(), "http": self.entry.http if self.entry else None,
            "archive": str(s.archive.folder) if s.archive is not None else None,
            "archive_root": str(self.archive_root) if self.archive_root is not None else None,
            "link": link, "fop": link["fop"], "queue": {"held": self.held, "depth": len(self._held)},
            "dictionary_hash": f"{s.mission.hash:08x}",
            "rover_dictionary_hash": f"{rover_hash:08x}" if rover_hash is not None else None,
            "rover_time": rover_time, "mode": mode, "clients": len(self.subscribers),
        }

    def telemetry(self) -> dict[str, Any]:
        st, m = self.session.state, self.session.mission
        with st.cond:
            hk, t = dict(st.hk), st.hk_time
        values = {}
        for name, v in hk.items():
            p = m.hk_parameters.get(name)
            lim = m.limit_state(name, float(v)) if isinstance(v, (int, float)) else "ok"
            values[name] = {"value": v, "unit": p.unit if p is not None else "", "limit": LIMIT_NAMES.get(lim, lim)}
        return {"t": t, "values": values}

    def dictionary(self) -> dict[str, Any]:
        m = self.session.mission

        def arg(a: Any) -> dict[str, Any]:
            d: dict[str, Any] = {"name": a.name, "type": a.type, "unit": a.unit, "description": a.description}
            if a.range is not None:
                d["min"], d["max"] = a.range
            if a.enum is not None:
                d["enum"] = {label: code for code, label in m.enum(a.enum).items()}
            return d

        commands = [{"name": c.name, "description": c.description, "args": [arg(a) for a in c.args]}
                    for c in m.commands_by_name.values()]
        telemetry = []
        for p in m.hk_parameters.values():
            t = arg(p)
            if p.limits:
                t["limits"] = {LIMIT_NAMES.get(k, k): list(v) for k, v in p.limits.items()}
            telemetry.append(t)
        events = [{"id": e.id, "name": e.name, "severity": e.severity, "message": e.message,
                   "args": [arg(a) for a in e.args]} for e in m.events_by_id.values()]
        return {"hash": f"{m.hash:08x}", "commands": commands, "telemetry": telemetry, "events": events}

    def events(self, after: int = 0, limit: int = 200, severity: str = "", name: str = "") -> list[dict[str, Any]]:
        st = self.session.state
        with st.cond:
            evs = [e for e in st.events if e.seq > after]
        if severity:
            evs = [e for e in evs if e.severity.upper() == severity.upper()]
        if name:
            evs = [e for e in evs if e.name.upper() == name.upper()]
        return [event_json(e) for e in evs[-limit:]] if limit > 0 else []

    # --- commanding ----------------------------------------------------------------------------
    def submit(self, name: str, args: dict[str, Any], client: str = "", at: str | None = None) -> CommandEntry:
        """Type and check a command as the CLI does, then queue it (or hold it). Runs off the loop."""
        from hil.gs.commanding import release_time

        s, m = self.session, self.session.mission
        if not isinstance(args, dict):
            raise FarsideError("args: expected an object of NAME: value")
        name = str(name).upper()
        values = m.parse_args(name, [f"{k}={v}" for k, v in args.items()])
        m.encode_args(name, values)
        rel = release_time(str(at), s.state) if at not in (None, "") else None
        with self._queue_lock:  # in order: a release sends what was held before anything new
            e = self.log.new(name, values, client, rel)
            if self.held:
                self._held.append(e)
                return e
            try:
                self._send(e)
            except BaseException:
                self.log.forget(e.id)
                raise
        return e

    def _send(self, e: CommandEntry) -> None:
        s = self.session
        if not s._dict_checked and not s.force:
            s.check_dictionary(self.connect_timeout)
        track = s.send_command(e.name, e.args, at=e.at)
        self.log.attach(e, track)

    def release(self) -> None:
        """Send what was held, in order (off the loop)."""
        with self._queue_lock:
            self.held = False
            while self._held:
                e = self._held.pop(0)
                try:
                    self._send(e)
                except (FarsideError, ProtocolError) as exc:
                    self.log.fail(e, str(exc))

    def _persist_command(self, e: CommandEntry) -> None:
        """Append a command's new state to the log file (called under the log's lock); rewrite
        the file with one line per command once it has grown well past that."""
        assert self.registration is not None
        path = self.registration.commands_path
        self._log_lines += 1
        if self._log_lines > 4 * self.log.keep:
            self.log.compact(path)
            self._log_lines = len(self.log.entries)
            return
        with path.open("a") as f:
            f.write(json.dumps(e.json()) + "\n")

    # --- HTTP ------------------------------------------------------------------------------------
    @web.middleware
    async def _errors(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """A fault in a handler answers JSON with one line (clients parse every answer) and
        leaves its traceback on the service's stderr."""
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            traceback.print_exc()
            return web.json_response({"error": f"{request.path}: internal error: {type(exc).__name__}: {exc}"}, status=500)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path.startswith("/static/"):  # the console's scripts and styles hold no data
            return await handler(request)
        if not authorized(request.remote, request.headers, request.query, self.token, self.require_token):
            return web.json_response({"error": "unauthorized: give Authorization: Bearer TOKEN"}, status=401)
        return await handler(request)

    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/api/status", self._h_status)
        r.add_get("/api/dictionary", self._h_dictionary)
        r.add_get("/api/telemetry", self._h_telemetry)
        r.add_get("/api/events", self._h_events)
        r.add_post("/api/commands", self._h_post_command)
        r.add_get("/api/commands", self._h_commands)
        r.add_get("/api/commands/{id}", self._h_command)
        r.add_post("/api/queue/hold", self._h_hold)
        r.add_post("/api/queue/release", self._h_release)
        r.add_get("/api/archive/sessions", self._h_sessions)
        r.add_get("/api/archive/hk", self._h_archive_hk)
        r.add_get("/ws", self._h_ws)
        r.add_get("/", self._h_index)
        r.add_get("/static/{path:.*}", self._h_static)

    async def _h_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())

    async def _h_dictionary(self, request: web.Request) -> web.Response:
        return web.json_response(self.dictionary())

    async def _h_telemetry(self, request: web.Request) -> web.Response:
        return web.json_response(self.telemetry())

    async def _h_events(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            after, limit = int(q.get("after", 0)), int(q.get("limit", 200))
        except ValueError:
            return _bad("after and limit: expected integers")
        return web.json_response({"events": self.events(after, limit, q.get("severity", ""), q.get("name", ""))})

    async def _h_post_command(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _bad("body: expected JSON {\"name\": ..., \"args\": {...}}")
        if not isinstance(body, dict) or not body.get("name"):
            return _bad("body: expected JSON {\"name\": ..., \"args\": {...}}")
        try:
            e = await asyncio.to_thread(self.submit, body["name"], body.get("args") or {},
                                        str(body.get("client") or ""), body.get("at"))
        except (FarsideError, ProtocolError) as exc:
            return _bad(str(exc))
        self._update_commands()
        return web.json_response(e.json(), status=201)

    async def _h_commands(self, request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", 100))
        except ValueError:
            return _bad("limit: expected an integer")
        return web.json_response({"commands": [e.json() for e in self.log.latest(limit)]})

    async def _h_command(self, request: web.Request) -> web.Response:
        try:
            e = self.log.get(int(request.match_info["id"]))
        except ValueError:
            e = None
        if e is None:
            return web.json_response({"error": f"no command {request.match_info['id']}"}, status=404)
        return web.json_response(e.json())

    async def _h_hold(self, request: web.Request) -> web.Response:
        self.held = True
        return web.json_response({"held": True})

    async def _h_release(self, request: web.Request) -> web.Response:
        await asyncio.to_thread(self.release)
        self._update_commands()
        return web.json_response({"held": False})

    async def _h_sessions(self, request: web.Request) -> web.Response:
        return web.json_response({"sessions": await asyncio.to_thread(self.sessions)})

    def sessions(self) -> list[dict[str, Any]]:
        root = self.archive_root
        if root is None or not root.is_dir():
            return []
        out = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and part_paths(p)):
            first = last = None
            n = 0
            for rec in read_records(folder):
                first = rec.time if first is None else first
                last = rec.time
                n += 1
            out.append({"folder": str(folder), "start": first, "end": last, "records": n})
        return out

    async def _h_archive_hk(self, request: web.Request) -> web.Response:
        names = [n for n in request.query.get("names", "").split(",") if n]
        try:
            since = float(request.query.get("since", 0) or 0)
        except ValueError:
            return _bad("since: expected UNIX seconds")
        unknown = [n for n in names if n not in self.session.mission.hk_parameters]
        if unknown:
            return _bad(f"no telemetry named {', '.join(unknown)}")
        folder = request.query.get("session") or (str(self.session.archive.folder) if self.session.archive else "")
        if not folder:
            return _bad("no archive")
        try:
            return web.json_response(await asyncio.to_thread(self.archive_hk, Path(folder), names, since))
        except FarsideError as exc:
            return _bad(str(exc))

    def archive_hk(self, folder: Path, names: list[str], since: float) -> dict[str, Any]:
        import numpy as np

        from hil.gs.export import decode_archive

        m = self.session.mission
        tables = decode_archive(m, folder)
        hk = tables.get(m.hk_packets[min(m.hk_packets)].name.lower())
        if hk is None or not len(hk):
            return {"t": [], "values": {n: [] for n in names}}
        t = np.asarray(hk.columns["ground_time"])
        sel = t >= since
        return {"t": t[sel].tolist(), "values": {n: np.asarray(hk.columns[n])[sel].tolist() for n in names}}

    async def _h_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        sub = Subscriber(ws)
        if "subscribe" in request.query:  # topics at connect: nothing published before they apply
            sub.topics = frozenset(w for w in request.query["subscribe"].split(",") if w in TOPICS)
        sub.put(json.dumps({"type": "link", **self.link_status()}))
        self._welcome(sub)
        self.subscribers.add(sub)
        pump = asyncio.create_task(sub.pump())
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    want = json.loads(msg.data).get("subscribe")
                except (ValueError, AttributeError):
                    want = None
                if isinstance(want, list):
                    before = sub.topics
                    sub.topics = frozenset(str(w) for w in want if w in TOPICS)
                    self._welcome(sub, before)
        finally:
            self.subscribers.discard(sub)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await pump
        return ws

    def _welcome(self, sub: Subscriber, before: frozenset[str] = frozenset()) -> None:
        """A client's first look at topics it just subscribed to: the latest telemetry; for the
        packet stream, recent event packets and the latest HK packet (so a joining watch or shell
        has values and events at once)."""
        new = sub.topics - before
        if "packets" in new:
            for t, p in self.session.backlog():
                sub.put(json.dumps({"type": "packet", "t": t, "hex": p.hex()}))
        if "telemetry" in new and self.session.state.hk_time is not None:
            sub.put(json.dumps({"type": "telemetry", **self.telemetry()}))

    async def _h_index(self, request: web.Request) -> web.StreamResponse:
        page = WEB_DIR / "index.html"
        if page.is_file():
            return web.FileResponse(page)
        return web.Response(text="farside ground station: the web console is not installed (hil/gs/web/index.html)\n",
                            content_type="text/plain")

    async def _h_static(self, request: web.Request) -> web.StreamResponse:
        root = WEB_DIR.resolve()
        path = (root / request.match_info["path"]).resolve()
        if root not in path.parents or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)


def _bad(message: str) -> web.Response:
    return web.json_response({"error": " ".join(message.split())}, status=400)


def event_json(e: Any) -> dict[str, Any]:
    return {"seq": e.seq, "t": e.ground_time, "rover_time": e.rover_time_s, "name": e.name,
            "severity": e.severity, "args": e.args, "message": e.message}


# --- running one -----------------------------------------------------------------------------------


@dataclass
class ServiceOptions:
    """What `farside gs serve` (or a client starting an embedded service) gives."""

    link: str
    dictionary: str | None = None
    keys: str | None = None
    spi: int = 1
    archive_root: str = "archive"
    rotate_mb: float = 64.0
    force: bool = False
    bd: bool = False
    baud: int = 115200
    connect_timeout: float = 10.0
    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    require_token: bool = False

    @classmethod
    def from_opts(cls, opts: dict[str, Any], **extra: Any) -> ServiceOptions:
        if not opts.get("link"):
            raise FarsideError("no link: give --link URL (or set FARSIDE_LINK)")
        names = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in {**opts, **extra}.items() if k in names and v is not None}
        return cls(**kw)


def build_service(o: ServiceOptions) -> GsService:
    """Claim the link, open the session (new archive folder under the root) and wrap it."""
    from hil.gs.archive import new_session_folder
    from hil.gs.mission import Mission

    mission = Mission.load(o.dictionary)
    reg = claim(o.link)
    try:
        root = Path(o.archive_root)
        session = ServiceSession(
            o.link, mission, archive=new_session_folder(root), keys=o.keys, spi=o.spi, ad=not o.bd,
            baudrate=o.baud, force=o.force, rotate_bytes=int(o.rotate_mb * 1024 * 1024), state_path=reg.state_path,
        )
        try:
            from hil.gs.session import open_link

            session._port = open_link(o.link, session.baudrate)
            session._link_up()
            session.start()
        except BaseException:
            session.close()
            raise
    except BaseException:
        reg.release()
        raise
    return GsService(session, reg, archive_root=root, host=o.host, port=o.port, token=o.token,
                     require_token=o.require_token, connect_timeout=o.connect_timeout)


async def serve_forever(service: GsService, ready: Callable[[GsService], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM."""
    import signal

    try:
        await service.start()
    except BaseException:
        await service.stop()  # the session's archive ends cleanly, the link is let go
        raise
    if ready is not None:
        ready(service)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, done.set)
    try:
        await done.wait()
    finally:
        await service.stop()


class EmbeddedService:
    """A service on its own thread and loop, for a client's lifetime (`farside gs send` with no
    service running): registered like any other, so a second client can join it."""

    def __init__(self, service: GsService) -> None:
        self.service = service
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="gs-service", daemon=True)
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(service.start(), self.loop)
        try:
            self.entry: Entry = fut.result(timeout=10)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self.service.stop(), self.loop)
        with contextlib.suppress(Exception):
            fut.result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()
