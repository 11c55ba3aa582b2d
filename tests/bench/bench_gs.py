"""Ground-station benchmarks (prints figures; not a test).

    python -m tests.bench.bench_gs [--packets 1000000]

1. export throughput: an archive of N HK packets framed by the rover's own TM framer;
   the vectorised decode (hil.gs.export) against a plain per-packet decode
   (walk the frames, reassemble, struct.unpack each packet) in the same run.
   The decode is run three times: the first run in a fresh process also pays for
   touching new memory (the archive view, the 131 MB packet stream, ~300 MB of output
   columns), which on a VM with lazily backed memory can cost more than the decode.
2. watch lag: packets fed live at 200/s through a session-like state and the watch
   renderer; lag = time from a packet's arrival to the frame that shows it.
"""

from __future__ import annotations

import argparse
import struct
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from hil.gs.archive import KIND_TM, read_records
from hil.gs.export import decode_archive, write_tables
from hil.gs.mission import Mission
from hil.gs.synth import bulk_hk_packets, frames_of, synth_archive, synth_packets


def plain_decode(mission: Mission, archive: Path) -> int:
    """Per-packet decode: frame by frame, reassemble, unpack each HK packet with struct."""
    st = mission.hk_struct(1)
    plen = mission.hk_packet_length(1)
    calib = [p.calibration for p in mission.hk_packets[1].parameters]
    rows = 0
    buf = bytearray()
    for rec in read_records(archive, {KIND_TM}):
        f = rec.payload
        fhp = ((f[4] & 7) << 8) | f[5]
        data = f[6:250]
        if not buf and fhp < 0x7FE:
            buf += data[fhp:]
        elif buf:
            buf += data
        pos = 0
        while len(buf) - pos >= 6:
            n = ((buf[pos + 4] << 8) | buf[pos + 5]) + 7
            if len(buf) - pos < n:
                break
            if n == plen and buf[pos + 7] == 3 and buf[pos + 8] == 25:
                vals = st.unpack_from(buf, pos + 21)
                _ = [v if c is None else c[0] + c[1] * v for v, c in zip(vals, calib, strict=True)]
                rows += 1
            pos += n
        del buf[:pos]
    return rows


def bench_export(n: int, cache: Path | None = None, repeats: int = 3) -> None:
    m = Mission.load()
    with tempfile.TemporaryDirectory() as d:
        arch = (cache or Path(d)) / f"hk-{n}"
        t0 = time.perf_counter()
        if not arch.exists():
            packets = bulk_hk_packets(m, n, events_every=1000)
            frames = frames_of(m, packets)
            del packets
            synth_archive(arch, m, frames)
            del frames
        size = sum(p.stat().st_size for p in arch.glob("*.fsa"))
        print(f"archive: {n} HK packets (+ an event every 1000), {size / 1e6:.1f} MB, "
              f"{len(list(arch.glob('*.fsa')))} parts (ready in {time.perf_counter() - t0:.1f} s)")
        best = float("inf")
        for i in range(repeats):
            t = time.perf_counter()
            tabs = decode_archive(m, arch)
            dv = time.perf_counter() - t
            best = min(best, dv)
            rows = len(tabs["hk_rover"])
            assert rows == n, (rows, n)
            print(f"vectorised decode, run {i + 1}: {rows / dv:,.0f} packets/s ({dv:.3f} s, {rows} rows x "
                  f"{len(tabs['hk_rover'].columns)} columns, calibrated, record CRCs checked)")
        t = time.perf_counter()
        write_tables({"hk_rover": tabs["hk_rover"]}, Path(d) / "out", "parquet")
        dw = time.perf_counter() - t
        print(f"Parquet write of the table: {dw:.3f} s; decode + write: {rows / (best + dw):,.0f} packets/s")
        del tabs
        t = time.perf_counter()
        rows2 = plain_decode(m, arch)
        dp = time.perf_counter() - t
        assert rows2 == n, (rows2, n)
        print(f"plain per-packet decode (struct.unpack per packet): {rows2 / dp:,.0f} packets/s ({dp:.3f} s)")
        print(f"speed-up (best vectorised run): {dp / best:.1f}x")


def bench_watch(rate: float = 200.0, seconds: float = 5.0, refresh_hz: float = 10.0) -> None:
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--skip-watch", action="store_true")
    ap.add_argument("--cache", type=Path, help="keep the generated archive in this folder between runs")
    args = ap.parse_args()
    bench_export(args.packets, args.cache)
    if not args.skip_watch:
        bench_watch()


if __name__ == "__main__":
    struct.calcsize(">I")
    main()
