"""The command queue's history: each command's stages from QUEUED to its outcome, with no I/O.

A command's stages, in the order they happen:
  QUEUED    accepted by the ground (on FOP-1's queue, or held while the queue is held)
  SENT      its frame went on the link
  ACCEPTED, STARTED, PROGRESS, COMPLETED        the rover's TM 1/1, 1/3, 1/5, 1/7
  REJECTED, START_FAILED, COMPLETION_FAILED     the rover's TM 1/2, 1/4, 1/8 (final)
  FAILED    never sent: the AD service was terminated before its frame went out
  UNKNOWN   sent, but its outcome is not known: COP-1 gave up on it unacknowledged, or the
            ground restarted while it was in flight; it may have run, and a later report
            (retrieved from the rover's packet store) still resolves it

`CommandLog.update` reads what the ground link knows (FOP-1 records, TM 1/x reports by request
id) and returns the commands whose stages changed. It works on any `GroundLink`, on that
link's clock: the service's wall-clock `Session` or the virtual-time `LoopGround` of the HIL
harness and `farside mission` (tests/gs/test_service_vtime.py).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.gs.link import CommandTrack, GroundLink
from hil.gs.mission import command_text
from protocols.cop1 import CommandState

FINAL_STAGES = ("COMPLETED", "REJECTED", "START_FAILED", "COMPLETION_FAILED", "FAILED")
FAILED_OUTCOMES = {"REJECTED", "START_FAILED", "COMPLETION_FAILED", "FAILED"}


@dataclass
class Stage:
    """One step of a command's life: when (UNIX s), how long after QUEUED, and what it says."""

    stage: str
    t: float
    elapsed_s: float
    detail: str = ""

    def json(self) -> dict[str, Any]:
        return {"stage": self.stage, "t": self.t, "elapsed_s": round(self.elapsed_s, 6), "detail": self.detail}


@dataclass
class CommandEntry:
    """A command as the service tracks it (`json()` is the API's command object)."""

    id: int
    name: str
    args: dict[str, Any]
    client: str
    t0: float
    request_id: tuple[int, int] | None = None
    stages: list[Stage] = field(default_factory=list)
    outcome: str | None = None  # the final stage's name, once there is one
    text: str = ""  # one line: the command and how it ended (`PING: accepted, started, completed`)
    at: int | None = None  # release time (rover s) of a time-tagged command
    track: CommandTrack | None = field(default=None, repr=False, compare=False)
    reports_seen: int = 0
    label: str = ""  # the command as the operator reads it, enums by name (command_text)

    @property
    def state(self) -> str:
        if self.outcome is not None:
            return "done"
        if any(s.stage == "UNKNOWN" for s in self.stages):
            return "unknown"
        if self.track is None:
            return "held" if self.request_id is None else "unknown"
        return "active"

    def describe(self) -> str:
        return self.label or command_text(self.name, self.args)

    def add(self, stage: str, t: float, detail: str = "") -> Stage:
        """A new stage at `t` (UNIX s on the ground link's clock)."""
        s = Stage(stage, t, max(0.0, t - self.t0), detail)
        self.stages.append(s)
        if stage in FINAL_STAGES:
            self.outcome = stage
        return s

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "args": self.args, "client": self.client, "t0": self.t0,
            "request_id": list(self.request_id) if self.request_id else None, "at": self.at,
            "stages": [s.json() for s in self.stages], "state": self.state, "outcome": self.outcome,
            "text": self.text, "label": self.describe(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CommandEntry:
        rid = d.get("request_id")
        e = cls(int(d["id"]), str(d["name"]), dict(d.get("args") or {}), str(d.get("client") or ""),
                float(d["t0"]), (int(rid[0]), int(rid[1])) if rid else None, at=d.get("at"))
        e.stages = [Stage(s["stage"], float(s["t"]), float(s["elapsed_s"]), s.get("detail", "")) for s in d["stages"]]
        e.outcome, e.text = d.get("outcome"), d.get("text", "")
        return e


class CommandLog:
    """Commands by id, newest last (the last `keep`), and their stages (see the module docstring).

    `persist` is called with each command whose stages changed (the service appends it to a
    JSON-lines file, so a restarted service knows what was in flight)."""

    def __init__(self, link: GroundLink, keep: int = 1000, persist: Callable[[CommandEntry], None] | None = None) -> None:
        self.link = link
        self.keep = keep
        self.persist = persist
        self.entries: OrderedDict[int, CommandEntry] = OrderedDict()
        # the commands being followed (a track, no outcome yet): what every update walks, so a
        # long history costs nothing per frame
        self._followed: dict[int, CommandEntry] = {}
        self.next_id = 1
        # commands come in on request threads while the loop updates them
        self._lock = threading.RLock()

    def new(self, name: str, args: dict[str, Any], client: str, at: int | None = None) -> CommandEntry:
        """A command taken in: QUEUED, not yet on the link (`attach` gives it its track)."""
        with self._lock:
            e = CommandEntry(self.next_id, name, dict(args), client, self.link.unix_now(), at=at)
            self._label(e)
            self.next_id += 1
            e.add("QUEUED", e.t0)
            self.entries[e.id] = e
            while len(self.entries) > self.keep:
                self._followed.pop(self.entries.popitem(last=False)[0], None)
            self._persist(e)
        return e

    def get(self, cid: int) -> CommandEntry | None:
        with self._lock:
            return self.entries.get(cid)

    def forget(self, cid: int) -> None:
        """A command refused after all (before it reached the link): not in the history."""
        with self._lock:
            self.entries.pop(cid, None)
            self._followed.pop(cid, None)

    def latest(self, limit: int) -> list[CommandEntry]:
        with self._lock:
            return list(self.entries.values())[-limit:] if limit > 0 else []

    def attach(self, e: CommandEntry, track: CommandTrack) -> None:
        with self._lock:
            for old in self.entries.values():
                if old is not e and old.outcome is None and old.request_id == track.request_id:
                    old.track = None  # the sequence count wrapped: its reports are the new one's now
                    self._followed.pop(old.id, None)
            self._followed[e.id] = e
        e.track = track
        e.request_id = track.request_id
        e.name, e.args = track.name, dict(track.args)  # a time-tagged one is TT_INSERT
        self._label(e)

    def _label(self, e: CommandEntry) -> None:
        # the entry as the operator reads it: its name and arguments, enums by label
        e.label = command_text(e.name, e.args, self.link.mission)

    def fail(self, e: CommandEntry, detail: str) -> None:
        """A held command the ground could not send after all (bad ARSN, link down)."""
        with self._lock:
            e.add("FAILED", self.link.unix_now(), detail)
            e.text = f"{e.describe()}: {detail}"
            self._persist(e)

    def pending(self) -> list[CommandEntry]:
        with self._lock:
            for cid in [cid for cid, e in self._followed.items() if e.outcome is not None or e.track is None]:
                del self._followed[cid]
            return list(self._followed.values())

    def update(self) -> list[CommandEntry]:
        """Bring every unfinished command's stages up to date; the ones that changed."""
        changed = []
        for e in self.pending():
            if self._update(e):
                changed.append(e)
                with self._lock:
                    self._persist(e)
        return changed

    def _update(self, e: CommandEntry) -> bool:
        track = e.track
        assert track is not None
        before = len(e.stages)
        rec = track.fop
        names = {s.stage for s in e.stages}
        if rec is not None and rec.sent_at is not None and "SENT" not in names:
            e.add("SENT", self.link.unix_now() - max(0.0, self.link.clock() - rec.sent_at))
        reports = self.link.verifications(track)
        for r in reports[e.reports_seen:]:
            stage = r.stage.upper()
            detail = self.link.failure_name(r) if r.failure_code is not None else ""
            if "SENT" not in {s.stage for s in e.stages}:
                e.add("SENT", r.ground_time)  # a report proves it went (e.g. after a restart)
            e.add(stage, r.ground_time, detail)
            if stage in FAILED_OUTCOMES:
                e.text = self.link.failure_text(track, r)
                break
        e.reports_seen = len(reports)
        if e.outcome is None and rec is not None and rec.state == CommandState.UNKNOWN and "UNKNOWN" not in names:
            why = (rec.reason.value if rec.reason else "unacknowledged") + (f", {rec.detail}" if rec.detail else "")
            e.add("UNKNOWN", self.link.unix_now(), f"sent, never acknowledged (COP-1: {why}); it may have run on "
                                                  "the rover: a report from the rover still resolves it")
            e.text = f"{track.describe()}: outcome unknown (sent, never acknowledged); do not resend before checking"
        if e.outcome is None and rec is not None and rec.state == CommandState.FAILED:
            why = (rec.reason.value if rec.reason else "failed") + (f", {rec.detail}" if rec.detail else "")
            e.add("FAILED", self.link.unix_now(), f"COP-1: {why}")
            e.text = f"{track.describe()}: never sent (COP-1: {why})"
        if e.outcome == "COMPLETED":
            e.text = f"{track.describe()}: " + ", ".join(r.stage for r in reports)
            if rec is not None:
                with self.link._lock:
                    if rec.state != CommandState.FAILED:
                        self.link.fop.mark_verified(rec, self.link.clock())
        return len(e.stages) != before

    def restore(self, path: Path) -> list[CommandEntry]:
        """Read a previous run's log: its history, and each command it left unresolved marked
        UNKNOWN but still followed by request id (a report arriving now resolves it)."""
        last: dict[int, dict[str, Any]] = {}
        try:
            with path.open() as f:
                for line in f:
                    try:
                        d = json.loads(line)
                        last[int(d["id"])] = d
                    except (ValueError, KeyError, TypeError):
                        continue  # a line torn by a kill
        except OSError:
            return []
        unresolved = []
        for i in sorted(last)[-self.keep:]:
            e = CommandEntry.from_json(last[i])
            self._label(e)  # named from the dictionary, also in a journal written before labels
            self.entries[e.id] = e
            self.next_id = max(self.next_id, e.id + 1)
            if e.outcome is None and e.request_id is not None:
                if not any(s.stage == "UNKNOWN" for s in e.stages):  # not already (two restarts)
                    e.add("UNKNOWN", self.link.unix_now(), "the ground station restarted with this command in flight; "
                                            "a report from the rover still resolves it")
                e.track = CommandTrack(e.name, e.args, e.request_id, b"", e.t0, label=e.describe())
                e.reports_seen = 0
                self._followed[e.id] = e
                unresolved.append(e)
        self.compact(path)
        return unresolved

    def compact(self, path: Path) -> None:
        """Rewrite the log file with one line per command kept."""
        from hil.gs.registry import write_atomic

        write_atomic(path, "".join(json.dumps(e.json()) + "\n" for e in self.entries.values()))

    def _persist(self, e: CommandEntry) -> None:
        if self.persist is not None:
            self.persist(e)
