"""A live ground-station session: one link, one archive, COP-1, commanding, waits.

    with Session.open("socket://localhost:7000", archive_root="archive") as s:
        s.check_dictionary(timeout=10)             # refuses to command on a mismatch
        track = s.send_command("DRIVE_DISTANCE", {"distance_m": 1.0, "speed_mph": 200.0})
        s.wait_verification(track, timeout=30)     # accepted, started, completed

The link is any pyserial URL or device path (serial port, pty, socket://host:port).
One I/O thread reads the link, deframes TM (ASM), archives every good frame,
feeds the ground state, drives FOP-1 with each CLCW and writes what FOP-1 says to
send (each TC frame is archived as sent). If the port vanishes (USB
re-enumeration, relay restart) the thread records the loss and reopens it with
backoff; nothing archived is lost and commanding resumes when the port returns.

The F Prime style test API (send_and_assert_command, await_telemetry, ...) is on
`hil.gs.api.GroundApi`, which wraps a session or a replay.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import serial

from hil.errors import FarsideError
from hil.gs.archive import DEFAULT_ROTATE_BYTES, KIND_LINK, ArchiveWriter, new_session_folder
from hil.gs.link import CommandTrack, GroundLink
from hil.gs.mission import Mission
from hil.gs.state import Verification
from protocols.cop1 import CommandState, FopConfig, FopState

# `farside gs send` exit codes, by the verification stage that failed
EXIT_COMPLETED = 0
EXIT_BAD_INPUT = 2  # bad input, link down, dictionary mismatch
EXIT_REJECTED = 3  # TM 1/2, or never accepted
EXIT_START_FAILED = 4  # TM 1/4
EXIT_COMPLETION_FAILED = 5  # TM 1/8
EXIT_TIMEOUT = 6  # accepted (or sent) but no final report within --timeout

FAILED_STAGES = {"rejected": EXIT_REJECTED, "start_failed": EXIT_START_FAILED, "completion_failed": EXIT_COMPLETION_FAILED}


class VerificationFailed(FarsideError):
    """A command was rejected, failed to start or failed to complete (exit code by stage)."""


def open_link(url: str, baudrate: int = 115200) -> serial.SerialBase:
    """A pyserial port for a URL (socket://, loop://, rfc2217://) or a device/pty path; a device
    is opened exclusively (flock, as mpremote and `farside flash` do), so no tool interleaves."""
    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=0.02, write_timeout=2.0,
                                     **({} if "://" in url else {"exclusive": True}))
    except (serial.SerialException, OSError, ValueError) as exc:
        raise FarsideError(f"link {url}: cannot open ({exc})") from None


class Session(GroundLink):
    """A ground-station session on one link, driven by its I/O thread and the wall clock.
    Start with `Session.open(...)`."""

    def __init__(
        self,
        url: str,
        mission: Mission | None = None,
        *,
        archive: Path | str | None = None,
        keys: Path | str | None = None,
        spi: int = 1,
        ad: bool = True,
        baudrate: int = 115200,
        force: bool = False,
        fop: FopConfig | None = None,
        reconnect_max_s: float = 2.0,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
    ) -> None:
        self.url = url
        super().__init__(
            mission or Mission.load(), keys=keys, spi=spi, fop=fop, t1_s=8.0,
            tc_seq=int(time.time() * 8),
        )
        self.state.link.url = url
        self.force = force
        self.ad = ad
        self.baudrate = baudrate
        self.reconnect_max_s = reconnect_max_s
        self._stop = threading.Event()
        self._port: serial.SerialBase | None = None
        self._thread: threading.Thread | None = None
        self._dict_checked = False
        self._events_seen = 0
        self._last_boot: object = None
        if archive is not None:
            self.start_archive(ArchiveWriter(archive, rotate_bytes=rotate_bytes), url)

    def clock(self) -> float:
        return time.monotonic()

    def _on_frame(self) -> None:
        # A rebooted rover's FARM starts at V(R) = 0: resynchronise it to our V(S) (Set V(R),
        # secured with an ARSN above the mark the rover restored), without an operator.
        st = self.state
        if self._last_boot is None and "boot_count" in st.hk_raw:
            # the boot the rover was in when we first heard it: its BOOT event, retrieved from
            # the packet store afterwards, is no reboot
            self._last_boot = st.hk_raw["boot_count"]
        if st.event_seq == self._events_seen:
            return
        boots = [e for e in st.events if e.seq > self._events_seen and e.name == "BOOT"]
        self._events_seen = st.event_seq
        for e in boots:
            count = e.args.get("boot_count")
            if count == self._last_boot:
                continue  # a duplicated frame repeats it
            self._last_boot = count
            with self._lock:
                if self.fop.state != FopState.INITIAL:
                    self.fop.initiate_ad_set_vr(self.fop.vs, self.clock())

    def unix_now(self) -> float:
        return time.time()

    @classmethod
    def open(cls, url: str, mission: Mission | None = None, *, connect_timeout: float = 5.0, archive_root: Path | str | None = None, **kw: Any) -> Session:
        """Open the link (failing fast if it cannot be opened at all) and start the I/O thread.
        Refused while a ground-station service owns the link: two FOP-1s would fight."""
        from hil.gs.registry import lookup

        served = lookup(url)
        if served is not None:
            raise FarsideError(f"link {url} is served by {served.describe()}: go through it "
                               f"(farside gs send/watch/shell use it) or stop it first")
        if archive_root is not None and "archive" not in kw:
            kw["archive"] = new_session_folder(Path(archive_root))
        s = cls(url, mission, **kw)
        s._port = open_link(url, s.baudrate)
        s._link_up()
        s.start()
        return s

    # --- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gs-link", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._drop_port()
        self.end_archive()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- link I/O -------------------------------------------------------------------
    def _link_up(self) -> None:
        with self.state.cond:
            self.state.link.up = True
            self.state.link.note = ""
            self.state.cond.notify_all()
        if self.archive is not None:
            self.archive.append_json(KIND_LINK, {"up": True, "url": self.url})

    def _drop_port(self) -> None:
        with self._lock:
            if self._port is not None:
                try:
                    self._port.close()
                except (serial.SerialException, OSError):
                    pass
            self._port = None

    def _link_down(self, why: str) -> None:
        self._drop_port()
        with self.state.cond:
            self.state.link.up = False
            self.state.link.note = why
            self.state.cond.notify_all()
        if self.archive is not None:
            self.archive.append_json(KIND_LINK, {"up": False, "why": why})
        self.reset_deframer()

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            if self._port is None:
                try:
                    port = open_link(self.url, self.baudrate)
                except FarsideError as exc:
                    with self.state.cond:
                        self.state.link.note = f"reconnecting: {exc}"
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self.reconnect_max_s)
                    continue
                with self._lock:
                    self._port = port
                backoff = 0.05
                with self.state.cond:
                    self.state.link.reconnects += 1
                    # the board may have been reset or reflashed: check its dictionary again
                    self.state.rover_dict_hash = None
                    self._dict_checked = False
                # FOP-1 keeps its state across a transport reconnect: frames in flight are
                # retransmitted on T1 as usual (a rover that rebooted says so with its BOOT event,
                # and _on_frame resynchronises FARM-1); never a failure of commands that may
                # have reached the rover
                self._link_up()
            try:
                self._service_once()
            except (serial.SerialException, OSError) as exc:
                self._link_down(f"link lost: {exc}")
            except Exception as exc:  # keep the link thread alive; report it
                with self.state.cond:
                    self.state.link.note = f"ground error: {type(exc).__name__}: {exc}"

    def _service_once(self) -> None:
        port = self._port
        if port is None:
            return
        waiting = port.in_waiting
        chunk = port.read(waiting if waiting else 1)
        if chunk:
            self.receive(chunk, self.unix_now())
        self._pump()

    def _pump(self) -> None:
        """Start the AD service when possible and write what FOP-1 has to send."""
        with self._lock:
            txs = self.poll_fop(self.ad)
            port = self._port
            for data in txs:
                if port is None:
                    break
                port.write(data)
                self.record_tc(data)
            if port is not None and txs:
                port.flush()

    # --- dictionary check -------------------------------------------------------------
    def check_dictionary(self, timeout: float = 10.0) -> int:
        """Wait for the rover's dictionary hash (BOOT event or HK); raise on a mismatch."""
        deadline = time.monotonic() + timeout
        with self.state.cond:
            while self.state.rover_dict_hash is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    if not self.state.link.up:
                        raise FarsideError(f"link {self.url} is down: {self.state.link.note or 'no connection'}")
                    raise FarsideError(
                        f"no telemetry with the rover's dictionary hash within {timeout:g} s on {self.url} "
                        f"({self.state.link.frames_ok} frames received)"
                    )
                self.state.cond.wait(min(left, 0.2))
            rover = self.state.rover_dict_hash
        if rover != self.mission.hash and not self.force:
            raise FarsideError(
                f"dictionary mismatch: rover has {rover:08x}, ground has {self.mission.hash:08x} "
                f"({self.mission.path}); refusing to command (use --force to override)"
            )
        self._dict_checked = True
        return rover

    # --- commanding ---------------------------------------------------------------------
    def send_packet(self, name: str, args: dict[str, Any], pkt: bytes, rid: tuple[int, int]) -> CommandTrack:
        if not self._dict_checked and not self.force:
            self.check_dictionary()
        if not self.state.link.up:
            raise FarsideError(f"link {self.url} is down: {self.state.link.note or 'no connection'}")
        return self.submit(name, args, pkt, rid, bypass=not self.ad)

    def send_command(self, name: str, args: dict[str, Any] | None = None, *, at: int | None = None) -> CommandTrack:
        """Send a command (typed args); `at` (rover seconds) wraps it in TT_INSERT."""
        args = dict(args or {})
        pkt, rid = self.command_packet(name, args, at)
        if at is None:
            return self.send_packet(name.upper(), args, pkt, rid)
        return self.send_packet("TT_INSERT", {"release_s": at, "command": name.upper()}, pkt, rid)

    def reports(self, track: CommandTrack) -> list[Verification]:
        return self.verifications(track)

    def wait_verification(self, track: CommandTrack, timeout: float, until: str = "completed") -> list[Verification]:
        """Wait for `until` (accepted/started/completed); raise VerificationFailed on a failure."""
        reps = self._wait_reports(track, timeout, until)
        if track.fop is not None and until == "completed":
            with self._lock:  # never while holding state.cond: the I/O thread takes _lock first
                if track.fop.state != CommandState.FAILED:
                    self.fop.mark_verified(track.fop, self.clock())
        return reps

    def _wait_reports(self, track: CommandTrack, timeout: float, until: str) -> list[Verification]:
        deadline = time.monotonic() + timeout
        with self.state.cond:
            while True:
                reps = self.reports(track)
                bad = track.failure()
                if bad is not None:
                    raise VerificationFailed(self.failure_text(track, bad), FAILED_STAGES[bad.stage])
                if track.reached(until):
                    return reps
                if track.fop is not None and track.fop.state == CommandState.FAILED:
                    raise VerificationFailed(
                        f"{track.describe()}: never sent (COP-1: {track.fop.reason.value if track.fop.reason else 'failed'})",
                        EXIT_REJECTED,
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = ", ".join(r.stage for r in reps) or "no report"
                    if track.fop is not None and track.fop.state == CommandState.UNKNOWN:
                        why = track.fop.reason.value if track.fop.reason else "unacknowledged"
                        raise VerificationFailed(
                            f"{track.describe()}: outcome UNKNOWN after {timeout:g} s (seen: {seen}): sent "
                            f"{track.fop.transmissions} times, never acknowledged (COP-1: {why}); it may have run "
                            f"on the rover: check its reports or counters before sending it again",
                            EXIT_TIMEOUT,
                        )
                    if not reps and not self.state.link.up:
                        raise FarsideError(f"{track.describe()}: link down ({self.state.link.note})")
                    raise VerificationFailed(
                        f"{track.describe()}: timed out after {timeout:g} s waiting for '{until}' (seen: {seen})",
                        EXIT_TIMEOUT,
                    )
                self.state.cond.wait(min(left, 0.1))


def describe_reports(reps: list[Verification]) -> str:
    return json.dumps([r.stage for r in reps])
