"""Ground-station service benchmarks (prints figures; not a test).

    python -m tests.bench.bench_gs [--pings 200] [--clients 10] [--rate 200] [--hours 1] [--json FILE]

1. command latency through the service: the rover (CPython firmware) on a pty, a zero-delay
   link. PING sent and followed to COMPLETED, first by a `Session` in this process (the
   link's own round trip plus the rover), then by a client of `farside gs serve` running in
   its own process (HTTP POST, stages over the WebSocket). The service's cost is the
   difference of the two, p50 and p99.
2. telemetry fan-out: a service in its own process fed synthetic TM frames (the rover's own
   framer) in bursts every 100 ms at `--rate` packets/s; `--clients` WebSocket clients
   subscribe to packets and telemetry. Lag = a message's arrival at a client - the time the
   service received its frame.
3. memory: the same service fed `--hours` of HK at 10 packets/s (an event every 100) as
   fast as it takes them (the hours are virtual: 36,000 HK reports per hour), one client
   subscribed; the service's RSS after setup and after each hour.
4. watch lag: packets fed live at 200/s into a ground state and the watch renderer; lag =
   time from a packet's arrival to the screen that shows it.

The export benchmark is tests/bench/bench_export.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hil.gs.mission import Mission  # noqa: E402
from hil.gs.synth import bulk_hk_packets, frames_of, synth_packets  # noqa: E402
from protocols.stream import frame_tm  # noqa: E402
from tests.bench.report import add_json_option, write_json  # noqa: E402


def pct(a: list[float], q: float) -> float:
    return float(np.percentile(np.array(a), q)) * 1e3


# --- 1. command latency -------------------------------------------------------------------------


def bench_latency(pings: int, work: Path, rounds: int = 4) -> dict[str, float]:
    """Direct and through-the-service PINGs in alternating rounds, so a busy machine weighs
    on both alike."""
    from hil.gs.client import RemoteSession
    from hil.gs.registry import lookup
    from hil.gs.session import Session
    from tests.gs.rover_pty import start_rover

    m = Mission.load()
    proc, link = start_rover(work / "rover")
    direct: list[float] = []
    via: list[float] = []
    try:
        for r in range(rounds):
            s = Session.open(link, m, archive=work / f"direct-{r}")
            try:
                s.check_dictionary(20)
                for _ in range(pings // rounds):
                    t = time.perf_counter()
                    s.wait_verification(s.send_command("PING"), 10)
                    direct.append(time.perf_counter() - t)
            finally:
                s.close()
            serve = subprocess.Popen([sys.executable, "-m", "hil.cli", "gs", "serve", "--link", link,
                                      "--archive-root", str(work / "archive")],
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                assert serve.stdout is not None
                for line in serve.stdout:
                    if line.startswith("console:"):
                        break
                entry = lookup(link)
                assert entry is not None
                rs = RemoteSession(entry, m, topics=("commands",), client="bench")
                try:
                    rs.check_dictionary(20)
                    for _ in range(pings // rounds):
                        t = time.perf_counter()
                        rs.follow(rs.submit("PING", {})["id"], 10)
                        via.append(time.perf_counter() - t)
                finally:
                    rs.close()
            finally:
                serve.terminate()
                serve.wait(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    f = {
        "direct_p50_ms": pct(direct, 50), "direct_p99_ms": pct(direct, 99),
        "service_p50_ms": pct(via, 50), "service_p99_ms": pct(via, 99),
    }
    f["service_overhead_p50_ms"] = f["service_p50_ms"] - f["direct_p50_ms"]
    f["service_overhead_p99_ms"] = f["service_p99_ms"] - f["direct_p99_ms"]
    print(f"command latency, PING to COMPLETED on a zero-delay pty link, {len(direct)} each in {rounds} alternating rounds: "
          f"direct Session p50 {f['direct_p50_ms']:.1f} ms p99 {f['direct_p99_ms']:.1f} ms; "
          f"through the service p50 {f['service_p50_ms']:.1f} ms p99 {f['service_p99_ms']:.1f} ms; "
          f"the service adds p50 {f['service_overhead_p50_ms']:.1f} ms, p99 {f['service_overhead_p99_ms']:.1f} ms")
    return f


# --- the synthetic-link service (child process) -------------------------------------------------------


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(mode: str, work: Path, rate: float, seconds: float, clients: int, hours: float) -> None:
    """A service on loop:// fed synthetic frames; prints its URL, then its figures as JSON."""
    from hil.gs.service import GsService, ServiceSession
    from hil.gs.session import open_link

    m = Mission.load()
    session = ServiceSession("loop://", m, archive=work / f"archive-{mode}", state_path=None)
    session._port = open_link("loop://")
    session._link_up()
    session.start()
    service = GsService(session, None, archive_root=work)

    def feed(octets: bytes) -> None:
        session.receive(octets, time.time())

    async def run() -> dict[str, Any]:
        entry = await service.start()
        print(entry.http, flush=True)
        while len(service.subscribers) < clients:
            await asyncio.sleep(0.05)
        out: dict[str, Any] = {}
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        if mode == "fanout":
            n = int(rate * seconds)
            packets = bulk_hk_packets(m, n, events_every=50)
            per = int(rate / 10)
            bursts = [b"".join(frame_tm(f) for f in frames_of(m, packets[i:i + per], first_count=i))
                      for i in range(0, len(packets), per)]

            def feeder() -> None:
                t0 = time.perf_counter()
                for k, b in enumerate(bursts):
                    due = t0 + k * 0.1
                    while time.perf_counter() < due:
                        time.sleep(max(0.0, min(0.005, due - time.perf_counter())))
                    feed(b)
                loop.call_soon_threadsafe(done.set)
        else:
            per_hour = 36000
            out["rss_start_mb"] = rss_mb()

            def feeder() -> None:
                count = 0
                for h in range(int(hours)):
                    for k in range(per_hour // 600):  # a minute of HK at a time
                        packets = bulk_hk_packets(m, 600, seed=h * 1000 + k, events_every=100)
                        feed(b"".join(frame_tm(f) for f in frames_of(m, packets, first_count=count)))
                        count += len(packets)
                        while len(session.packets) > 5000:
                            time.sleep(0.01)
                    time.sleep(1.0)
                    out[f"rss_after_{h + 1}h_mb"] = rss_mb()
                    out[f"hk_after_{h + 1}h"] = session.state.hk_count
                loop.call_soon_threadsafe(done.set)

        th = threading.Thread(target=feeder, daemon=True)
        t = time.perf_counter()
        th.start()
        await done.wait()
        out["feed_s"] = time.perf_counter() - t
        await asyncio.sleep(1.0)
        out["packets"] = session.state.packets_total
        out["dropped"] = service.fanout_dropped
        await service.stop()
        return out

    print(json.dumps(asyncio.run(run())), flush=True)


def start_child(mode: str, work: Path, **kw: Any) -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "tests.bench.bench_gs", "--child", mode, "--work", str(work)]
    for k, v in kw.items():
        args += [f"--{k}", str(v)]
    p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    return p, p.stdout.readline().strip()


async def listen(http: str, topics: str, lags: list[float], counts: dict[str, int], stop: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{http}/ws?subscribe={topics}", max_msg_size=0) as ws:
        while not stop.is_set():
            try:
                msg = await ws.receive(timeout=0.2)
            except asyncio.TimeoutError:
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.time()
            d = json.loads(msg.data)
            kind = d.get("type", "")
            counts[kind] = counts.get(kind, 0) + 1
            if kind in ("packet", "telemetry") and d.get("t"):
                lags.append(now - float(d["t"]))


def run_clients(p: subprocess.Popen[str], http: str, clients: int, topics: str) -> tuple[list[float], list[dict[str, int]], dict[str, Any]]:
    lags: list[float] = []
    counts: list[dict[str, int]] = [{} for _ in range(clients)]
    result: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(listen(http, topics, lags, counts[i], stop)) for i in range(clients)]
        assert p.stdout is not None
        line = await asyncio.to_thread(p.stdout.readline)
        result.update(json.loads(line))
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    p.wait(timeout=30)
    return lags, counts, result


def bench_fanout(work: Path, clients: int, rate: float, seconds: float) -> dict[str, float]:
    p, http = start_child("fanout", work, rate=rate, seconds=seconds, clients=clients)
    lags, counts, res = run_clients(p, http, clients, "packets,telemetry")
    per_client = [c.get("packet", 0) for c in counts]
    f = {"fanout_clients": clients, "fanout_rate_pps": rate, "fanout_lag_p50_ms": pct(lags, 50),
         "fanout_lag_p99_ms": pct(lags, 99), "fanout_lag_max_ms": max(lags) * 1e3,
         "fanout_packets_min_per_client": min(per_client), "fanout_dropped": res["dropped"]}
    print(f"telemetry fan-out: {clients} WebSocket clients, {rate:.0f} packets/s for {seconds:g} s in bursts every 100 ms: "
          f"lag p50 {f['fanout_lag_p50_ms']:.1f} ms, p99 {f['fanout_lag_p99_ms']:.1f} ms, max {f['fanout_lag_max_ms']:.1f} ms; "
          f"each client got >= {min(per_client)} of {res['packets']} packets "
          f"and {min(c.get('telemetry', 0) for c in counts)} telemetry messages; dropped {res['dropped']}")
    return f


def bench_memory(work: Path, hours: int) -> dict[str, float]:
    p, http = start_child("memory", work, hours=hours, clients=1)
    _, counts, res = run_clients(p, http, 1, "telemetry,events,link")
    f = {"memory_rss_start_mb": res["rss_start_mb"]}
    for h in range(1, hours + 1):
        f[f"memory_rss_after_{h}h_mb"] = res[f"rss_after_{h}h_mb"]
    print(f"service memory, HK at 10 packets/s (an event every 100) fed in virtual time, one client: "
          f"RSS {res['rss_start_mb']:.1f} MB after setup, "
          + ", ".join(f"{res[f'rss_after_{h}h_mb']:.1f} MB after {h} h ({res[f'hk_after_{h}h']} HK)" for h in range(1, hours + 1))
          + f"; fed in {res['feed_s']:.1f} s, the client got {counts[0].get('telemetry', 0)} telemetry messages")
    return f


def bench_watch(rate: float = 200.0, seconds: float = 5.0, refresh_hz: float = 10.0) -> dict[str, float]:
    """Frames arrive as the rover sends them (a flush every 100 ms) at `rate` packets/s;
    watch renders at `refresh_hz`. Lag: arrival of the newest packet a screen shows ->
    that screen finished. Falling behind would show as a growing lag and packets missing."""
    from hil.gs.state import GroundState
    from hil.gs.watch import render_to_string

    m = Mission.load()
    packets, _ = synth_packets(m, int(rate * seconds), events_every=10)
    batch = int(rate / 10)
    bursts = [frames_of(m, packets[i : i + batch]) for i in range(0, len(packets), batch)]
    state = GroundState(m)
    arrived: list[tuple[int, float]] = []  # (packets decoded so far, arrival time)
    done = threading.Event()

    def feed() -> None:
        t0 = time.perf_counter()
        for k, frames in enumerate(bursts):
            due = t0 + k * 0.1
            while time.perf_counter() < due:
                time.sleep(max(0.0, min(0.005, due - time.perf_counter())))
            for f in frames:
                state.on_frame(f)
            arrived.append((state.packets_total, time.perf_counter()))
        done.set()

    th = threading.Thread(target=feed)
    th.start()
    lags: list[float] = []
    render_s: list[float] = []
    while not done.is_set():
        t = time.perf_counter()
        render_to_string(state, width=140)
        end = time.perf_counter()
        render_s.append(end - t)
        if arrived:
            lags.append(end - arrived[-1][1])
        time.sleep(max(0.0, 1 / refresh_hz - (end - t)))
    th.join()
    a = np.array(lags)
    r = np.array(render_s)
    print(f"watch: {len(packets)} packets at {rate:.0f}/s in {len(bursts)} bursts of frames, refresh {refresh_hz:g} Hz, "
          f"{len(r)} screens; render median {np.median(r) * 1e3:.1f} ms (max {r.max() * 1e3:.1f} ms); "
          f"lag arrival->on screen median {np.median(a) * 1e3:.1f} ms, p99 {np.percentile(a, 99) * 1e3:.1f} ms, "
          f"max {a.max() * 1e3:.1f} ms; decoded {state.packets_total} of {len(packets)}")
    return {"watch_render_p50_ms": float(np.median(r)) * 1e3, "watch_lag_p99_ms": float(np.percentile(a, 99)) * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pings", type=int, default=200)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--hours", type=int, default=2, help="virtual hours of HK for the memory figure")
    ap.add_argument("--skip", action="append", default=[], choices=["latency", "fanout", "memory", "watch"])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    add_json_option(ap)
    args = ap.parse_args()
    if args.child:
        assert os.environ.get("FARSIDE_STATE_DIR"), "a child runs with the parent's private state dir"
        child(args.child, args.work, args.rate, args.seconds, args.clients, args.hours)
        return
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        # the SDLS sequence ledger and the service registry of this run only: synthetic HK
        # carries random sa_arsn values, which would otherwise raise the user's own ledger
        os.environ["FARSIDE_STATE_DIR"] = str(work / "state")
        os.environ["FARSIDE_GS_RUN"] = str(work / "run")
        if "latency" not in args.skip:
            figures.update(bench_latency(args.pings, work))
        if "fanout" not in args.skip:
            figures.update(bench_fanout(work, args.clients, args.rate, args.seconds))
        if "memory" not in args.skip:
            figures.update(bench_memory(work, args.hours))
        if "watch" not in args.skip:
            figures.update(bench_watch())
    write_json(args.json, figures, "gs")


if __name__ == "__main__":
    main()
