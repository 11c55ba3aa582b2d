"""Yamcs as farside's ground station (figures, not pass/fail): `python -m tests.bench.bench_yamcs`.

1. Yamcs start time: `YamcsServer.start()` until the instance is RUNNING on the HTTP API
   (the farside MDB loaded, the frame links up), over a few starts on fresh folders, secured
   as `farside yamcs init` writes them (farside's COP-1 TC link on the class path); and apart,
   the compilation of that link, which the first start of a folder does once (later starts
   find it current).
2. The HK rate Yamcs keeps up with from a replay: a `farside mission` archive's TM frames sent
   to Yamcs's UDP frame link (a) at fixed rates, counting what Yamcs's link took (UDP drops
   what it cannot take), and (b) windowed on the link's own count (nothing lost), HK
   packets per second decoded.
3. Commands per minute through Yamcs under the `queqiao` relay profile (125 bit/s up, 1.75 s
   each way): PINGs to the rover on a virtual board through Yamcs's COP-1 and the AES-GCM SA,
   one at a time (each waits for its Completion verifier) and all queued at once.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from hil.commands.yamcs import event_decoding, mdb_xml
from hil.gs.keys import DEV_KEYS
from hil.yamcs.config import YamcsSetup, sdls_key_from_setting, write_config
from hil.yamcs.fly import Flight, Station, archive_tm_frames, send_frames
from hil.yamcs.server import YamcsServer
from tests.bench.report import add_json_option, write_json

FIGURES: dict[str, float] = {}


def _free(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _folder(root: Path, name: str, **kw: Any) -> Path:
    folder = root / name
    setup = YamcsSetup.from_dictionary(http_port=_free(), tm_port=_free(socket.SOCK_DGRAM),
                                       tc_port=_free(socket.SOCK_DGRAM), **kw)
    write_config(folder, setup, mdb_xml(), event_decoding())
    return folder


def start_times(root: Path, n: int) -> list[float]:
    key, _ = sdls_key_from_setting(DEV_KEYS)
    out, builds = [], []
    for i in range(n):
        server = YamcsServer(_folder(root, f"start{i}", sdls_key=key))
        server.start()
        builds.append(server.build_s)
        try:
            out.append(server.wait_ready(180))
        finally:
            server.stop()
    print(f"farside's TC link compiled on each folder's first start: {', '.join(f'{b:.1f}' for b in builds)} s")
    FIGURES["extension_compile_s"] = min(builds)
    return out


def mission_archive(root: Path) -> Path:
    from hil.mission.report import MissionSpec, run_mission

    out = root / "mission"
    result = run_mission(MissionSpec("sortie", seed=1, out=out, relay="lab", plots=False))
    assert result.ok, result.error
    return out / "archive"


def replay_rates(root: Path, archive: Path, rates: list[float]) -> None:
    from yamcs.client import YamcsClient

    frames = archive_tm_frames(archive)
    server = YamcsServer(_folder(root, "replay"))
    server.start()
    try:
        server.wait_ready(180)
        client = YamcsClient(f"localhost:{server.http_port}")
        link = client.get_link(server.instance, "tm-frames")
        port = int(server.summary["tm_port"])
        for rate in rates:
            before = link.get_info().in_count
            took = send_frames(frames, port, frames_per_s=rate)
            time.sleep(2.0)
            got = link.get_info().in_count - before
            FIGURES[f"replay_{rate:.0f}_fps_taken_pct"] = 100.0 * got / len(frames)
            print(f"  {rate:7.0f} frames/s offered ({took:5.1f} s): Yamcs took {got}/{len(frames)} "
                  f"({100.0 * got / len(frames):5.1f} %)")
        before = link.get_info().in_count
        took = send_frames(frames, port, received=lambda: link.get_info().in_count - before)
        FIGURES["replay_windowed_frames_per_s"] = len(frames) / took
        print(f"  windowed on the link's count: {len(frames)} frames in {took:.2f} s = "
              f"{len(frames) / took:.0f} frames/s, none lost")
    finally:
        server.stop()


def commands_per_minute(root: Path, n: int, profile: str) -> None:
    key, _ = sdls_key_from_setting(DEV_KEYS)
    os.environ.setdefault("FARSIDE_RUNTIME_DIR", str(root / "rt"))
    os.environ.setdefault("FARSIDE_KEYS", str(DEV_KEYS))
    folder = _folder(root, "cmd", sdls_key=key)
    with Station(folder, profile=profile, heapsize="320K") as st:
        print(f"  Yamcs up in {st.yamcs_start_s:.1f} s beside the board and the relay")
        FIGURES["station_yamcs_start_s"] = st.yamcs_start_s or 0.0
        flight = Flight(st.url, st.instance)
        try:
            flight.wait_parameter("mode", lambda v: v is not None, 120)
            flight.command("PING", timeout_s=300)  # COP-1 in step
            t0 = time.monotonic()
            ok = sum(flight.command("PING", timeout_s=300).success for _ in range(n))
            dt = time.monotonic() - t0
            FIGURES["one_at_a_time_commands_per_min"] = 60.0 * ok / dt
            print(f"  one at a time: {ok}/{n} PINGs completed in {dt:.1f} s = {60.0 * ok / dt:.1f} commands/min")
            t0 = time.monotonic()
            cmds = [flight.conn.issue("/farside/PING") for _ in range(n)]
            for c in cmds:
                c.await_complete(timeout=600)
            dt = time.monotonic() - t0
            ok = sum(bool(c.is_success()) for c in cmds)
            FIGURES["queued_commands_per_min"] = 60.0 * ok / dt
            print(f"  all queued at once: {ok}/{n} PINGs completed in {dt:.1f} s = {60.0 * ok / dt:.1f} commands/min")
        finally:
            flight.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--commands", type=int, default=8)
    ap.add_argument("--profile", default="queqiao")
    add_json_option(ap)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        times = start_times(root, args.starts)
        print(f"Yamcs start: {', '.join(f'{t:.1f}' for t in times)} s (min {min(times):.1f}, max {max(times):.1f})")
        FIGURES.update(yamcs_start_min_s=min(times), yamcs_start_max_s=max(times))
        archive = mission_archive(root)
        print(f"HK replay into Yamcs ({len(archive_tm_frames(archive))} frames of a sortie):")
        replay_rates(root, archive, [500.0, 2000.0, 5000.0, 10000.0])
        print(f"commands through Yamcs under {args.profile}:")
        commands_per_minute(root, args.commands, args.profile)
    write_json(args.json, FIGURES, "yamcs")


if __name__ == "__main__":
    main()
