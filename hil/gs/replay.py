"""Play an archive back into a ground state: at the recorded pace, N times faster, or at once.

The replayed state is what the live session would have shown: the same frames go
through the same demultiplexer and decoders, so `watch` and procedures run on a
replay exactly as on a live link (without commanding).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from hil.gs.archive import KIND_LINK, KIND_TC, KIND_TM, read_records
from hil.gs.mission import Mission
from hil.gs.state import GroundState


class Replay:
    """Feeds an archive into `state` from a thread; `speed` 0 means as fast as possible."""

    def __init__(self, archive: Path | str, mission: Mission, speed: float = 1.0, state: GroundState | None = None) -> None:
        self.archive = Path(archive)
        self.state = state or GroundState(mission)
        self.state.link.url = f"replay {self.archive.name}"
        self.speed = speed
        self.records = 0
        self.frames = 0
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None
        # read (and check) the archive up front: a corrupt archive fails here, in the caller
        self._records = list(read_records(self.archive))

    def run(self) -> None:
        """Replay in the calling thread."""
        try:
            t0_rec: float | None = None
            t0 = time.monotonic()
            for rec in self._records:
                if self._stop.is_set():
                    break
                if t0_rec is None:
                    t0_rec = rec.time
                if self.speed > 0:
                    due = t0 + (rec.time - t0_rec) / self.speed
                    delay = due - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                self.records += 1
                now = time.time()
                if rec.kind == KIND_TM:
                    self.frames += 1
                    self.state.on_frame(rec.payload, now)
                elif rec.kind == KIND_TC:
                    with self.state.cond:
                        self.state.link.tc_frames_sent += 1
                elif rec.kind == KIND_LINK:
                    info = rec.json()
                    with self.state.cond:
                        self.state.link.up = bool(info.get("up"))
                        self.state.link.note = str(info.get("why", ""))
                        self.state.cond.notify_all()
        except Exception as exc:  # reported by the caller
            self.error = exc
        finally:
            with self.state.cond:
                self.state.link.note = f"replay finished: {self.frames} frames"
                self.state.cond.notify_all()
            self.done.set()

    def start(self) -> Replay:
        self.state.link.up = True
        self._thread = threading.Thread(target=self.run, name="gs-replay", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
