"""A fault campaign: a wheel failure and a relay outage on one drive, over many seeds.

    pytest tests/hil/test_campaign.py --farside-seed 1..50

Each seed picks the wheel, where it jams, and when and how long the relay is lost; the
session ends with a table of outcomes (and <basetemp>/farside/campaign.json). A run is
judged by the plant's truth: `true_error_mm` is the distance truly covered minus the
distance commanded (`error_mm` is the rover's own report, kept beside it), `true_side_mm`
how far it ends to the left of its line; the outcome is "survived" when the truth is within
tolerance, "short" when the rover stopped short of where it believes it is (a failure).
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.mission.api import greater_than
from tests.hil import truth

pytestmark = [pytest.mark.hil, pytest.mark.farside_targets("virtual")]

DISTANCE_M = 12.0
TOLERANCE_MM = 150
HEADING_CDEG = 500
SIDE_MM = 500  # the arrival window the 100 m traverse states
ROOT = Path(__file__).resolve().parents[2]


def test_wheel_failure_and_outage_campaign(rover, relay, plant, farside_seed, farside_campaign):
    rng = random.Random(farside_seed)
    wheel = rng.randint(1, 6)
    jam_at_m = round(rng.uniform(2.0, 8.0), 2)
    outage_in_s = round(rng.uniform(0.0, 60.0), 1)
    outage_s = round(rng.uniform(60.0, 400.0), 1)
    outcome = {"seed": farside_seed, "wheel": wheel, "jam_at_m": jam_at_m, "outage_s": outage_s}
    start = truth.mark(plant)
    try:
        drive = rover.send_command("DRIVE_DISTANCE", distance_m=DISTANCE_M, speed_mph=200)
        rover.await_telemetry("odometer_m", greater_than(jam_at_m), timeout=600)
        plant.jam_wheel(wheel)
        relay.outage(outage_s, start_in_s=outage_in_s)
        rover.await_verification(drive, timeout=DISTANCE_M * 40 + outage_s + 600)
        done = rover.assert_event("DRIVE_COMPLETED")
        fault = rover.assert_event("WHEEL_FAULT")
        leg = truth.since(plant, start)
        outcome.update(
            outcome="survived",
            error_mm=done.args["travelled_mm"] - DISTANCE_M * 1000,
            true_error_mm=None if leg is None else round(leg.travelled_m * 1000 - DISTANCE_M * 1000),
            true_side_mm=None if leg is None else round(leg.across_m * 1000),
            heading_cdeg=done.args["heading_cdeg"],
            true_heading_cdeg=None if leg is None else round(leg.turned_deg * 100),
            detected=rover.mission.enum_label("wheel_state", fault.args["state"]),
            rover_s=round(rover.now()),
        )
        if leg is not None and abs(outcome["true_error_mm"]) > TOLERANCE_MM:
            outcome["outcome"] = "short"
    except Exception as exc:
        outcome.update(outcome="lost", why=str(exc)[:60])
        raise
    finally:
        farside_campaign.record(**outcome)
    assert fault.args["wheel"] == wheel
    assert abs(outcome["error_mm"]) <= TOLERANCE_MM
    assert abs(outcome["heading_cdeg"]) <= HEADING_CDEG
    if leg is None:
        return  # no in-process plant: the rover's report is all there is
    assert abs(outcome["true_heading_cdeg"]) <= HEADING_CDEG
    assert abs(outcome["true_side_mm"]) <= SIDE_MM
    # the truth within tolerance: the rover's pose estimate sees the slip of five wheels
    assert outcome["outcome"] == "survived", (
        f"truly {outcome['true_error_mm']} mm off the {DISTANCE_M:g} m commanded (reported {outcome['error_mm']} mm)"
    )


# --- the campaign spread over workers: one merged table ------------------------------------------

CAMPAIGN_TEST = "tests/hil/test_campaign.py::test_wheel_failure_and_outage_campaign"


def run_campaign(tmp: Path, name: str, seeds: str, *how: str, args: tuple[str, ...] = (CAMPAIGN_TEST,),
                 cwd: Path = ROOT) -> list[dict[str, object]]:
    """pytest in its own process on the campaign; the merged table from its campaign.json."""
    base = tmp / name
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "--farside-seed", seeds, "-q", "-p", "no:cacheprovider",
         "--basetemp", str(base), *how],
        cwd=cwd, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "farside fault campaign" in proc.stdout
    table: list[dict[str, object]] = json.loads((base / "farside" / "campaign.json").read_text())
    return table


def socket_worker(tmp: Path, name: str) -> tuple[subprocess.Popen[bytes], int]:
    """execnet's socket server on a loopback port: what a remote machine runs for `--tx socket=`."""
    import execnet.script.socketserver as server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log = tmp / f"{name}.log"
    # the checkout on the worker's path; xdist copies pytest itself into the worker's folder
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, server.__file__, f"127.0.0.1:{port}"], cwd=tmp,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while b"Entering Accept loop" not in log.read_bytes():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return proc, port


@pytest.mark.slow
@pytest.mark.farside_targets("virtual")
def test_campaign_tables_merged_from_workers_equal_one_workers(tmp_path: Path) -> None:
    seeds = "1..4"
    one = run_campaign(tmp_path, "n1", seeds, "-n", "1")
    assert [row["seed"] for row in one] == [1, 2, 3, 4]
    assert run_campaign(tmp_path, "n2", seeds, "-n", "2") == one
    # two remote workers over loopback, as on other machines: execnet socket servers, the
    # controller outside the checkout (paths are the workers'), the tests named as a module
    servers = [socket_worker(tmp_path, f"worker{i}") for i in range(2)]
    try:
        tx = [a for i, (_, port) in enumerate(servers)
              for a in ("--tx", f"socket=127.0.0.1:{port}//chdir={tmp_path / f'worker{i}'}")]
        remote = run_campaign(tmp_path, "socket", seeds, "--dist", "load", *tx,
                              args=("--pyargs", "tests.hil.test_campaign", "-k", "outage_campaign"), cwd=tmp_path)
    finally:
        for proc, _ in servers:
            proc.kill()
            proc.wait()
    assert remote == one
