"""Yamcs's PUS-1 verifiers when a command's reports reach Yamcs before its own sequence count.

Yamcs's PUS postprocessor assigns a command's sequence count when COP-1 takes the command's
frame to send, and the verifiers learn it through the command history, on another thread than
the telemetry. On a busy server a report can come first (a clean-clone CI run of the Yamcs
flight saw "Acceptance CANCELLED, Start OK, Completion OK"). Here that order is made certain,
with no rover and no relay: COP-1 holds the command until it has a CLCW, the reports go in as TM
frames without an OCF (so they give COP-1 none), and only then a frame with a CLCW lets the
command go. Yamcs's own Pus1Verifier misses the earlier stages there and completion cancels them
(Acceptance and Start CANCELLED, Completion OK: a mutation of farside's verifier that forgets
its kept reports shows the same); farside's Pus1ReportVerifier (hil.yamcs.extension) decides
every stage from the reports it kept, a failure report included.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.yamcs.mdb import STAGES
from protocols.clcw import Clcw
from protocols.dictionary import load_dictionary
from protocols.pus import TcPacket, build_tm_packet
from protocols.spacepacket import build_idle_packet
from protocols.tm_frame import TmMultiplexer
from tests.yamcs.conftest import wait_until, write_folder

pytestmark = [pytest.mark.slow, pytest.mark.yamcs]

D = load_dictionary()
FIRST_SEQ = 1  # the PUS postprocessor's first sequence count for an APID
FAILURE = min(D.failure_codes)
PING = D.commands["PING"]


class Ground:
    """Yamcs on a fresh folder, its TM port fed by hand; COP-1 waits for its first CLCW."""

    def __init__(self, folder: Path) -> None:
        from hil.yamcs.fly import Flight
        from hil.yamcs.server import YamcsServer

        # a sliding window of one frame, and no retransmission while a test runs: with no rover,
        # no frame is acknowledged but by the CLCWs the test sends
        self.setup = write_folder(folder, cop1_window=1, cop1_t1_s=300)
        self.server = YamcsServer(folder)
        self.server.start()
        try:
            self.server.wait_ready(120)
            self.flight = Flight(self.server.url, self.server.instance)
        except BaseException:
            self.server.stop()
            raise
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.frames = 0  # frames sent, for the VC and MC frame counts
        self.tm_seq = 0

    def send(self, *packets: bytes, clcw: int | None = None) -> None:
        """The packets (none: an idle packet) in TM frames to Yamcs, each frame's OCF `clcw`
        (None: frames without an OCF, which give COP-1 no CLCW)."""
        m = D.mission
        mux = TmMultiplexer(int(m["scid"]), int(m["tm_vcid"]), int(m["tm_frame_length"]), clcw=clcw,
                            mc_count=self.frames & 0xFF, vc_count=self.frames & 0xFF)
        for p in packets or (build_idle_packet(mux.data_length),):
            mux.push(p)
        for frame in mux.flush():
            self.sock.sendto(frame, ("127.0.0.1", self.setup.tm_port))
            self.frames += 1

    def report(self, subservice: int, seq: int, code: int | None = None) -> bytes:
        """A TM 1/x report on the PING with sequence count `seq` (`code`: a failure's)."""
        data = struct.pack(">HH", *TcPacket(int(D.mission["tc_apid"]), seq, PING.service, PING.subservice).request_id)
        if code is not None:
            data += code.to_bytes(2, "big")
        self.tm_seq += 1
        return build_tm_packet(int(D.mission["tm_apid"]), self.tm_seq, 1, subservice, data)

    def hk(self, rejected: int) -> bytes:
        """An HK_ROVER report whose tc_auth_rejected is `rejected` (the other fields a seeded draw)."""
        import random

        from hil.gs.mission import Mission
        from hil.gs.synth import random_hk_values

        sid, hk = next((sid, hk) for sid, hk in D.housekeeping.items() if hk.name == "HK_ROVER")
        values = random_hk_values(Mission.load(), sid, random.Random(1))
        values[[a.name for a in hk.parameters].index("tc_auth_rejected")] = rejected
        self.tm_seq += 1
        return build_tm_packet(int(D.mission["tm_apid"]), self.tm_seq, 3, 25, struct.pack(hk.struct_format, sid, *values))

    def close(self) -> None:
        self.sock.close()
        self.flight.close()
        self.server.stop()


@pytest.fixture(scope="module")
def ground(yamcs_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ground]:
    g = Ground(tmp_path_factory.mktemp("verifier") / "yamcs")
    try:
        yield g
    finally:
        g.close()


def _stage(subservice: int) -> str:
    """The parameter prefix of the stage a 1/x report decides (its success subservice's)."""
    return STAGES[subservice if subservice in STAGES else subservice - 1][1]


def _deliver(g: Ground, reports: list[tuple[int, int, int | None]]) -> None:
    """The reports (subservice, sequence count, failure code) to Yamcs, and wait until it has
    decoded the last."""
    f = g.flight
    g.send(*(g.report(*r) for r in reports))
    sub, seq, _ = reports[-1]
    assert wait_until(lambda: f.parameter(f"verification/{_stage(sub)}_tc_sequence_count") == seq
                      and f.parameter("verification/report_subtype") == sub)


def _decided(cmd: Any) -> dict[str, str]:
    """The command's stages once Yamcs has completed it."""
    from hil.yamcs.fly import Flight

    cmd.await_complete(timeout=30)
    return Flight.settled_stages(cmd)


def test_reports_that_come_before_the_sequence_count_decide_their_stages(ground: Ground) -> None:
    from hil.yamcs.fly import Flight

    g, f = ground, ground.flight
    vcid = int(D.mission["tc_vcid"])
    # 1. COP-1 holds the first command until it has a CLCW; its three reports come first
    first = f.conn.issue(f.qualified("PING"))
    assert wait_until(lambda: Flight._stages(first).get("Verifier_Completion") == "PENDING"), Flight._stages(first)
    _deliver(g, [(1, FIRST_SEQ, None), (3, FIRST_SEQ, None), (7, FIRST_SEQ, None)])
    assert "ccsds-seqcount" not in first.attributes  # the reports are in, the sequence count is not
    g.send(clcw=Clcw(vcid=vcid, report_value=0).to_int())  # COP-1 goes active on its first CLCW
    assert wait_until(lambda: g.server.api(f"/cop1/{f.instance}/tc-frames.vc1/status").get("state") == "ACTIVE")
    # a next command moves COP-1's wait queue: the first goes, the second waits behind a
    # sliding window of one frame until the first frame is acknowledged
    second = f.conn.issue(f.qualified("PING"))
    assert wait_until(lambda: "ccsds-seqcount" in first.attributes)
    assert first.attributes["ccsds-seqcount"] == FIRST_SEQ
    stages = _decided(first)
    assert [stages.get(f"Verifier_{v}") for v in ("Acceptance", "Start", "Completion")] == ["OK"] * 3, stages
    assert first.is_success()  # Yamcs's own verifier: Acceptance and Start CANCELLED here

    # 2. the second's reports come first too: accepted, failed at start, and a completion
    # report on another command's sequence count, which must complete nothing
    assert "ccsds-seqcount" not in second.attributes
    _deliver(g, [(1, FIRST_SEQ + 1, None), (4, FIRST_SEQ + 1, FAILURE), (7, FIRST_SEQ + 5, None)])
    g.send(clcw=Clcw(vcid=vcid, report_value=1).to_int())  # acknowledges the first frame
    assert wait_until(lambda: "ccsds-seqcount" in second.attributes)
    assert second.attributes["ccsds-seqcount"] == FIRST_SEQ + 1
    stages = _decided(second)
    assert stages.get("Verifier_Acceptance") == "OK" and stages.get("Verifier_Start") == "NOK", stages
    assert stages.get("Verifier_Completion") != "OK", stages
    assert not second.is_success() and D.failure_codes[FAILURE] in (second.error or ""), second.error


def test_a_rover_that_rejects_every_tc_frame_fails_the_command_in_one_line(ground: Ground) -> None:
    """A rover whose keys are not Yamcs's (or a folder in clear mode) rejects each TC frame: its
    HK tc_auth_rejected rises and no report of the command comes. Flight.command says so once its
    grace has passed, instead of waiting out the command's timeout (5 minutes each in fly); with
    the count steady it waits as before. (COP-1 holds this PING behind the last test's frame:
    what reaches the rover does not matter here, only what it reports.)"""
    import threading
    import time

    from hil.errors import FarsideError

    g, f = ground, ground.flight
    grace, f.auth_grace_s = f.auth_grace_s, 2.0
    g.send(g.hk(3))
    assert wait_until(lambda: f.parameter("tc_auth_rejected") == 3)
    stop = threading.Event()
    rejecting = threading.Event()

    def rover() -> None:  # HK every half second; its count rises once `rejecting` is set
        count = 3
        while not stop.wait(0.5):
            count += rejecting.is_set()
            g.send(g.hk(count))

    player = threading.Thread(target=rover, daemon=True)
    player.start()
    try:
        quiet = f.command("PING", timeout_s=5)  # nothing rejected: the wait runs its course
        assert not quiet.success and quiet.seconds >= 5, quiet
        rejecting.set()  # from now on every frame is rejected
        t0 = time.monotonic()
        with pytest.raises(FarsideError) as err:
            f.command("PING", timeout_s=120)
        took = time.monotonic() - t0
    finally:
        stop.set()
        player.join(5)
        f.auth_grace_s = grace
    msg = str(err.value)
    assert msg.startswith("PING: the rover rejected ") and "(HK tc_auth_rejected) and reported nothing" in msg, msg
    assert "a folder in clear mode, or another key" in msg and "\n" not in msg
    assert 2.0 <= took < 15, took
