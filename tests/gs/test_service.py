"""The ground-station service on a pty link: one owner per link, many clients, crash and resume."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hil.cli import main
from hil.errors import FarsideError
from hil.gs.client import RemoteSession, connect
from hil.gs.mission import Mission
from hil.gs.registry import Registration, lookup
from hil.gs.service import authorized
from hil.gs.session import Session, VerificationFailed
from tests.gs.conftest import stop
from tests.gs.rover_pty import ROOT, start_rover

M = Mission.load()


class Served:
    """`farside gs serve` in its own process, as an operator starts it."""

    def __init__(self, link: str, archive: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hil.cli", "gs", "serve", "--link", link, "--archive-root", str(archive), *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
        )
        assert self.proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"gs serve exited: {lines} {self.proc.stderr.read() if self.proc.stderr else ''}")
            lines.append(line)
            if line.startswith("console: "):
                self.console = line.split(None, 1)[1].strip()
                break
        self.http = self.console.split("/?")[0].rstrip("/")
        self.lines = lines

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def get(url: str, token: str | None = None) -> Any:
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture()
def rover_link(tmp_path: Path) -> Iterator[str]:
    proc, path = start_rover(tmp_path / "rover")
    try:
        yield path
    finally:
        stop(proc)


def remote(link: str, client: str, topics: tuple[str, ...] = ("commands", "link")) -> RemoteSession:
    entry = lookup(link)
    assert entry is not None, "no service registered for the link"
    rs = RemoteSession(entry, M, topics=topics, client=client)
    rs.check_dictionary(15)
    return rs


def test_a_second_service_on_the_same_link_is_refused_in_one_line(rover_link: str, tmp_path: Path) -> None:
    first = Served(rover_link, tmp_path / "archive")
    try:
        pid = first.proc.pid
        second = subprocess.run(
            [sys.executable, "-m", "hil.cli", "gs", "serve", "--link", rover_link, "--archive-root", str(tmp_path / "b")],
            cwd=ROOT, capture_output=True, text=True, timeout=30,
        )
        assert second.returncode == 2
        assert second.stdout == ""
        assert second.stderr == f"farside: error: link {rover_link} is already served by pid {pid} at {first.http}\n"
        assert not (tmp_path / "b").exists()  # refused before touching the link or an archive
        entry = lookup(rover_link)
        assert entry is not None and entry.pid == pid
        assert oct(os.stat(Registration(rover_link).path).st_mode & 0o777) == "0o600"
        # a tool that opens the link itself (keys rotate, GroundApi.connect) is refused too
        with pytest.raises(FarsideError, match=f"link {rover_link} is served by pid {pid} at http://"):
            Session.open(rover_link, M)
    finally:
        first.stop()
    assert lookup(rover_link) is None  # a clean stop withdraws the entry


def test_two_operators_command_while_a_third_watches_and_the_console_listens(rover_link: str, tmp_path: Path) -> None:
    served = Served(rover_link, tmp_path / "archive")
    console: list[dict[str, Any]] = []
    stop_console = threading.Event()

    async def listen() -> None:  # the web console's WebSocket, default topics
        async with aiohttp.ClientSession() as http, http.ws_connect(served.http + "/ws") as ws:
            while not stop_console.is_set():
                try:
                    msg = await ws.receive(timeout=0.2)
                except asyncio.TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                console.append(json.loads(msg.data))

    listener = threading.Thread(target=lambda: asyncio.run(listen()))
    listener.start()
    watcher = remote(rover_link, "watch", ("packets", "link", "commands"))
    ops = [remote(rover_link, f"op{i}") for i in (1, 2)]
    try:
        pings_before = watcher.state.pings
        mine: dict[str, list[dict[str, Any]]] = {"op1": [], "op2": []}
        errors: list[BaseException] = []

        def operate(rs: RemoteSession) -> None:
            try:
                for _ in range(25):
                    cmd = rs.submit("PING", {})
                    mine[rs.client].append(rs.follow(cmd["id"], 20))
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=operate, args=(rs,)) for rs in ops]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        # (a rover reset by its emulated watchdog when a loaded machine starves it terminates
        # the AD service: the message says so)
        assert not errors, (errors, "rover boot_count", watcher.state.hk.get("boot_count"),
                            [e.name for e in watcher.state.events if e.name in ("BOOT", "WATCHDOG")])
        for name in ("op1", "op2"):
            done = mine[name]
            assert len(done) == 25
            assert all(c["outcome"] == "COMPLETED" and c["client"] == name for c in done)
            assert [s["stage"] for s in done[0]["stages"]] == ["QUEUED", "SENT", "ACCEPTED", "STARTED", "COMPLETED"]
            ids = {c["id"] for c in done}
            other = {c["id"] for c in mine["op2" if name == "op1" else "op1"]}
            assert not ids & other  # no command is two operators'
        # the rover executed each exactly once: one ping reply per command, seen by the watcher
        deadline = time.monotonic() + 5
        while watcher.state.pings < pings_before + 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert watcher.state.pings - pings_before == 50
        assert watcher.state.hk_count > 0 and watcher.state.link.up
        # the console saw every command's completion, and telemetry and link state
        stop_console.set()
        listener.join(timeout=10)
        completed = {m["id"] for m in console if m["type"] == "command" and m["outcome"] == "COMPLETED"}
        assert completed == {c["id"] for c in mine["op1"] + mine["op2"]}
        assert {"telemetry", "link", "command"} <= {m["type"] for m in console}
        assert "packet" not in {m["type"] for m in console}  # not asked for
        status = get(served.http + "/api/status")
        assert status["fop"]["state"] == "ACTIVE" and status["link"]["tc_frames_sent"] >= 50
        history = get(served.http + "/api/commands?limit=100")["commands"]
        assert len(history) == 50 and all(c["outcome"] == "COMPLETED" for c in history)
        evs = get(served.http + "/api/events?limit=1000")["events"]
        assert not [e for e in evs if e["name"].startswith("TC_AUTH")]
    finally:
        stop_console.set()
        for rs in [*ops, watcher]:
            rs.close()
        served.stop()
    assert len(list((tmp_path / "archive").iterdir())) == 1  # one archive for everyone


def test_api_checks_arguments_as_the_cli_does_and_holds_the_queue(rover_link: str, tmp_path: Path) -> None:
    served = Served(rover_link, tmp_path / "archive")
    rs = remote(rover_link, "op")
    try:
        with pytest.raises(Exception, match=r"MODE_SET.mode: expected one of SAFE, STANDBY, DRIVE, HIBERNATE, got 'BOOT'"):
            rs.submit("MODE_SET", {"mode": "BOOT"})
        with pytest.raises(Exception, match=r"DRIVE_DISTANCE.speed_mph: expected 1..200 m/h, got 360"):
            rs.submit("DRIVE_DISTANCE", {"distance_m": "1", "speed_mph": "10cm/s"})
        assert rs.http.post("/api/queue/hold") == {"held": True}
        cmd = rs.submit("PING", {})
        time.sleep(0.5)
        held = rs.http.get(f"/api/commands/{cmd['id']}")
        assert [s["stage"] for s in held["stages"]] == ["QUEUED"] and held["state"] == "held"
        assert rs.http.get("/api/status")["queue"] == {"held": True, "depth": 1}
        assert rs.http.post("/api/queue/release") == {"held": False}
        assert rs.follow(cmd["id"], 10)["outcome"] == "COMPLETED"
        d = rs.http.get("/api/dictionary")
        drive = next(c for c in d["commands"] if c["name"] == "DRIVE_DISTANCE")
        assert drive["args"][1] == {"name": "speed_mph", "type": "f32", "unit": "m/h", "description": "metres per hour",
                                    "min": 1, "max": 200}
        tm = rs.http.get("/api/telemetry")
        assert tm["values"]["battery_pct"]["unit"] == "%" and tm["values"]["battery_pct"]["limit"] == "ok"
        hk = rs.http.get("/api/archive/hk?names=battery_pct")
        assert len(hk["t"]) == len(hk["values"]["battery_pct"]) > 0
        sessions = rs.http.get("/api/archive/sessions")["sessions"]
        assert len(sessions) == 1 and sessions[0]["records"] > 0
    finally:
        rs.close()
        served.stop()


def test_token_required_beyond_loopback(rover_link: str, tmp_path: Path) -> None:
    tok = "s3cret-token"
    here = {"Host": "127.0.0.1:8080"}
    assert authorized("127.0.0.1", here, {}, tok)
    assert authorized("::1", {"Host": "[::1]:8080"}, {}, tok)
    assert authorized("127.0.0.1", {"Host": "localhost:8080", "Origin": "http://localhost:8080"}, {}, tok)
    # another web page in the operator's browser, or a DNS name rebound to 127.0.0.1
    assert not authorized("127.0.0.1", {**here, "Origin": "https://example.net"}, {}, tok)
    assert not authorized("127.0.0.1", {"Host": "evil.example:8080"}, {}, tok)
    assert authorized("127.0.0.1", {**here, "Origin": "https://example.net"}, {"token": tok}, tok)
    assert not authorized("192.0.2.7", {}, {}, tok)
    assert not authorized("192.0.2.7", {"Authorization": "Bearer wrong"}, {}, tok)
    assert authorized("192.0.2.7", {"Authorization": f"Bearer {tok}"}, {}, tok)
    assert authorized("192.0.2.7", {}, {"token": tok}, tok)
    assert not authorized("127.0.0.1", {}, {}, tok, require_token=True)
    served = Served(rover_link, tmp_path / "archive", "--require-token", "--token", tok)
    try:
        assert served.console.endswith(f"/?token={tok}")
        with pytest.raises(urllib.error.HTTPError) as err:
            get(served.http + "/api/status", "wrong")
        assert err.value.code == 401
        assert get(served.http + "/api/status", tok)["url"] == rover_link
    finally:
        served.stop()
    served = Served(rover_link, tmp_path / "archive")
    try:
        assert get(served.http + "/api/status")["url"] == rover_link  # loopback: no token asked
        req = urllib.request.Request(served.http + "/api/commands", data=b'{"name": "PING"}', method="POST",
                                     headers={"Origin": "https://example.net", "Content-Type": "text/plain"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 401  # a page from elsewhere cannot command through the browser
    finally:
        served.stop()


@pytest.mark.slow
def test_kill9_mid_command_then_restart_resumes_the_link_and_resolves_the_command(rover_link: str, tmp_path: Path) -> None:
    served = Served(rover_link, tmp_path / "archive")
    rs = remote(rover_link, "op")
    try:
        assert rs.follow(rs.submit("PING", {})["id"], 10)["outcome"] == "COMPLETED"
        drive = rs.submit("DRIVE_DISTANCE", {"distance_m": 0.5, "speed_mph": 200})  # 9 s: outlasts the restart
        rs.follow(drive["id"], 10, "started")
        vs_before = rs.http.get("/api/status")["fop"]["vs"]
    finally:
        rs.close()
    served.kill9()
    assert lookup(rover_link) is None  # the dead service's entry is stale
    served = Served(rover_link, tmp_path / "archive")
    rs = remote(rover_link, "op")
    try:
        status = rs.http.get("/api/status")
        assert status["fop"]["vs"] == vs_before  # FOP-1 V(S) resumed, not restarted at 0
        # the drive in flight: UNKNOWN at restart, then resolved by the rover's completion report
        final = rs.follow(drive["id"], 20)
        stages = [s["stage"] for s in final["stages"]]
        assert stages[:3] == ["QUEUED", "SENT", "ACCEPTED"] and "UNKNOWN" in stages
        assert final["outcome"] == "COMPLETED"
        # the rover takes the next command: no out-of-window frame, no authentication lockout
        assert rs.follow(rs.submit("PING", {})["id"], 10)["outcome"] == "COMPLETED"
        evs = rs.http.get("/api/events?limit=1000")["events"]
        assert not [e for e in evs if e["name"].startswith("TC_AUTH")]
        assert rs.http.get("/api/telemetry")["values"]["tc_auth_rejected"]["value"] == 0
    finally:
        rs.close()
        served.stop()
    assert len(list((tmp_path / "archive").iterdir())) == 2  # one archive session per service run


def test_send_with_no_service_runs_one_for_its_lifetime_and_others_join_it(
    rover_link: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opts = {"link": rover_link, "archive_root": str(tmp_path / "archive")}
    assert main(["gs", "send", "PING", "--quiet", "--link", rover_link, "--archive-root", opts["archive_root"]]) == 0
    assert capsys.readouterr().out == "PING: accepted, started, completed\n"
    assert lookup(rover_link) is None and not Registration(rover_link).path.exists()
    first = connect(opts)  # an embedded service, as `gs watch` starts one
    try:
        entry = lookup(rover_link)
        assert entry is not None and entry.pid == os.getpid()
        rc = main(["gs", "send", "PING", "--quiet", "--link", rover_link, "--archive-root", opts["archive_root"]])
        assert rc == 0 and capsys.readouterr().out == "PING: accepted, started, completed\n"
        with pytest.raises(VerificationFailed, match="rejected .OUT_OF_RANGE."):
            first.follow(first.submit("PARAM_SET", {"param_id": 3, "value": 45})["id"], 10)
        first.follow(first.submit("DRIVE_DISTANCE", {"distance_m": 0.01, "speed_mph": 200})["id"], 10)
        time.sleep(0.3)
        # a client joining later starts with the latest HK and the recent events, once each
        joiner = remote(rover_link, "late", ("packets", "link"))
        try:
            deadline = time.monotonic() + 2
            while joiner.state.hk_count == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert joiner.state.hk["mode"] in ("STANDBY", "DRIVE") and "battery_pct" in joiner.state.hk
            seen = [e.name for e in first.state.events]
            assert "DRIVE_STARTED" in seen
            assert [e.name for e in joiner.state.events][:len(seen)] == seen
        finally:
            joiner.close()
    finally:
        first.close()
    assert lookup(rover_link) is None
    assert len(list((tmp_path / "archive").iterdir())) == 2  # the joining send opened no archive of its own


def test_send_default_timeout_follows_the_drive_and_the_round_trip() -> None:
    from hil.gs.client import default_timeout_s, expected_duration_s

    assert expected_duration_s(M, "DRIVE_DISTANCE", {"distance_m": 10.0, "speed_mph": 200.0}) == pytest.approx(180.0)
    assert expected_duration_s(M, "DRIVE_DISTANCE", {"distance_m": -1.0, "speed_mph": 50.0}) == pytest.approx(72.0)
    # a turn in place: each side's wheels travel angle x track/2 at the speed governor (200 m/h)
    assert expected_duration_s(M, "TURN", {"angle_deg": 90.0}) == pytest.approx(3.1416 * 0.25 / 200 * 3600, rel=1e-3)
    assert expected_duration_s(M, "PING", {}) == 0.0
    assert default_timeout_s(M, "DRIVE_DISTANCE", {"distance_m": 10.0, "speed_mph": 200.0}, rtt_s=2.5) > 180 + 5


def test_ctrl_c_during_send_says_the_drive_may_still_execute_and_how_to_stop_it(rover_link: str, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hil.cli", "gs", "send", "DRIVE_DISTANCE", "distance_m=0.3", "speed_mph=200",
         "--link", rover_link, "--archive-root", str(tmp_path / "archive")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    seen = []
    for line in proc.stdout:
        seen.append(line.split()[0])
        if seen[-1] == "STARTED":
            break
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=15)
    err = proc.stderr.read()
    assert seen == ["QUEUED", "SENT", "ACCEPTED", "STARTED"]
    assert rc == 130
    assert err == (f"farside: error: interrupted: DRIVE_DISTANCE distance_m=0.3 speed_mph=200 may still execute on the "
                   f"rover (sent, accepted, started); stop it with: farside gs send STOP --link {rover_link}\n")
    assert lookup(rover_link) is None  # its embedded service went with it
