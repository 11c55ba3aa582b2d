"""Yamcs MDB benchmark: the XTCE writer, and how fast Yamcs decodes farside HK with it.

    python -m tests.bench.bench_yamcs_mdb [--seconds S] [--rates R,R,...]

Prints the XTCE's size and build time, Yamcs's start time with it, then for each offered HK
rate (packets/s, framed by the rover's codec, sent as UDP frames to Yamcs's TM link): the packets
Yamcs's link extracted, the HK packets its realtime processor decoded (one parameter subscribed)
and the rate it kept. Needs Java and the Yamcs jars.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time

from hil.gs.mission import Mission
from hil.gs.synth import bulk_hk_packets, frames_of
from hil.yamcs.config import YamcsSetup, write_config
from hil.yamcs.mdb import build_mdb, mdb_report
from hil.yamcs.server import YamcsServer
from tests.bench.report import add_json_option, write_json

FIGURES: dict[str, float] = {}


def _port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_build(runs: int = 5) -> str:
    t0 = time.perf_counter()
    for _ in range(runs):
        xml = build_mdb()
    dt = (time.perf_counter() - t0) / runs
    FIGURES.update(xtce_octets=len(xml), xtce_build_ms=dt * 1000)
    print(f"XTCE: {len(xml)} octets, built in {dt * 1000:.0f} ms (mean of {runs})")
    for line in mdb_report():
        print(f"  not carried in full: {line}")
    return xml


def _vc_packets(server: YamcsServer) -> int:
    links = server.api(f"/links/{server.instance}")["links"]
    return sum(int(link.get("dataInCount", 0)) for link in links if link["name"].endswith(".vc0"))


def bench_rates(xml: str, rates: list[int], seconds: float) -> None:
    from yamcs.client import YamcsClient

    mission = Mission.load()
    with tempfile.TemporaryDirectory() as tmp:
        setup = YamcsSetup.from_dictionary(http_port=_port(), tm_port=_port(socket.SOCK_DGRAM),
                                           tc_port=_port(socket.SOCK_DGRAM))
        write_config(tmp, setup, xml)
        server = YamcsServer(tmp)
        server.start()
        try:
            FIGURES["yamcs_ready_s"] = server.wait_ready(180)
            print(f"Yamcs ready in {FIGURES['yamcs_ready_s']:.1f} s with this MDB")
            client = YamcsClient(f"localhost:{setup.http_port}")
            seen = [0]
            lock = threading.Lock()

            def on_data(data: object) -> None:
                with lock:
                    seen[0] += len(getattr(data, "parameters", []))

            name = f"/{mission.pd.mission['name']}/{mission.hk_packets[1].parameters[0].name}"
            sub = client.get_processor(setup.instance, "realtime").create_parameter_subscription([name],
                                                                                                on_data=on_data)
            time.sleep(1.0)
            out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            out.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
            for rate in rates:
                n = int(rate * seconds)
                frames = frames_of(mission, bulk_hk_packets(mission, n, seed=rate))
                with lock:
                    seen[0] = 0
                before = _vc_packets(server)
                t0 = time.perf_counter()
                per_frame = seconds / len(frames)
                for i, f in enumerate(frames):
                    out.sendto(f, ("127.0.0.1", setup.tm_port))
                    lag = t0 + (i + 1) * per_frame - time.perf_counter()
                    if lag > 0.002:
                        time.sleep(lag)
                sent_s = time.perf_counter() - t0
                deadline = time.perf_counter() + 20.0
                last, last_t = -1, time.perf_counter()
                while time.perf_counter() < deadline:
                    with lock:
                        got = seen[0]
                    if got >= n:
                        break
                    if got != last:
                        last, last_t = got, time.perf_counter()
                    elif time.perf_counter() - last_t > 3.0:
                        break
                    time.sleep(0.05)
                with lock:
                    got = seen[0]
                if got != last:
                    last_t = time.perf_counter()
                done_s = max(last_t - t0, sent_s)  # to the last decoded packet
                extracted = _vc_packets(server) - before
                FIGURES[f"offered_{rate}_decoded_pct"] = 100 * got / n
                FIGURES[f"offered_{rate}_decoded_hk_per_s"] = got / done_s
                print(f"offered {rate:>6} HK/s ({len(frames)} frames in {sent_s:.1f} s): link extracted "
                      f"{extracted}, processor decoded {got} of {n} ({100 * got / n:.1f} %), "
                      f"{got / done_s:.0f} HK/s decoded over {done_s:.1f} s")
            sub.cancel()
            out.close()
        finally:
            server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per offered rate")
    ap.add_argument("--rates", default="100,1000,5000,20000", help="offered HK packets per second")
    add_json_option(ap)
    args = ap.parse_args()
    xml = bench_build()
    bench_rates(xml, [int(r) for r in args.rates.split(",")], args.seconds)
    write_json(args.json, FIGURES, "yamcs_mdb")


if __name__ == "__main__":
    main()
