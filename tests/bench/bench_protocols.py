"""Ground codec benchmarks (prints figures; not a test).

    python -m tests.bench.bench_protocols

- TM frames (256 octets) decoded to space packets per second (FECF check + demultiplexing),
  and with every packet's PUS header parsed too; target >= 20,000 frames/s.
- TC frames built and parsed per second, plain and authenticated.
- Stream deframer throughput in MB/s on a TM stream with 1% corrupted frames (and with an
  on_bad hook keeping the corrupted ones).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable

from protocols.dictionary import load_dictionary
from protocols.pus import build_tc_packet, build_tm_packet, parse_tm_packet
from protocols.sdls import FrameAuthenticator, KeyStore, SecuritySender
from protocols.stream import TmDeframer, frame_tm
from protocols.tc_frame import build_tc_frame, parse_tc_frame
from protocols.tm_frame import TmDemultiplexer, TmMultiplexer
from tests.bench.report import add_json_option, write_json

FIGURES: dict[str, float] = {}


def _best(fn: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    """(best seconds, items) over `repeat` runs of fn (which returns how many items it did)."""
    best = float("inf")
    items = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        items = fn()
        best = min(best, time.perf_counter() - t0)
    return best, items


def tm_frames(n_packets: int = 6000) -> list[bytes]:
    rnd = random.Random(7)
    d = load_dictionary()
    hk_len = len(d.hk_struct_format(1)) and __import__("struct").calcsize(d.hk_struct_format(1))
    mux = TmMultiplexer(171, 0, clcw=0x01040000)
    frames: list[bytes] = []
    for i in range(n_packets):
        size = hk_len if i % 3 == 0 else rnd.randrange(4, 40)
        mux.push(build_tm_packet(32, i & 0x3FFF, 3 if i % 3 == 0 else 5, 25 if i % 3 == 0 else 1,
                                 os.urandom(size), msg_counter=i & 0xFFFF))
        frames += mux.frames()
    return frames + mux.flush()


def bench_tm_decode() -> None:
    frames = tm_frames()

    def demux_only() -> int:
        d = TmDemultiplexer()
        n = 0
        for f in frames:
            n += len(d.feed(f))
        assert d.counters.gaps == 0
        return len(frames)

    def demux_and_pus() -> int:
        d = TmDemultiplexer()
        for f in frames:
            for p in d.feed(f):
                parse_tm_packet(p)
        return len(frames)

    t, n = _best(demux_only)
    FIGURES["tm_decode_frames_per_s"] = n / t
    print(f"TM decode (FECF + demux to packets): {n / t:,.0f} frames/s  ({n} frames of 256 octets, "
          f"{n * 256 / t / 1e6:.1f} MB/s)  target >= 20,000")
    t, n = _best(demux_and_pus, repeat=1)
    FIGURES["tm_decode_pus_frames_per_s"] = n / t
    print(f"TM decode + PUS parse of every packet: {n / t:,.0f} frames/s")


def bench_tc() -> None:
    key = bytes(range(32))
    packets = [build_tc_packet(1, i, 200, 2, os.urandom(8)) for i in range(2000)]

    def build_parse_plain() -> int:
        for i, p in enumerate(packets):
            parse_tc_frame(build_tc_frame(171, 1, i & 0xFF, p))
        return len(packets)

    def build_parse_secured() -> int:
        sender = SecuritySender(key)
        auth = FrameAuthenticator(KeyStore({1: key}))
        for i, p in enumerate(packets):
            f = parse_tc_frame(build_tc_frame(171, 1, i & 0xFF, p, security=sender), security=auth)
            assert f.spi is not None and f.sec_seq is not None
            auth.commit(f.spi, f.sec_seq)
        return len(packets)

    t, n = _best(build_parse_plain)
    FIGURES["tc_build_parse_frames_per_s"] = n / t
    print(f"TC frames built + parsed: {n / t:,.0f} frames/s")
    t, n = _best(build_parse_secured)
    FIGURES["tc_build_parse_auth_frames_per_s"] = n / t
    print(f"TC frames built + parsed + authenticated: {n / t:,.0f} frames/s")


def bench_deframer() -> None:
    frames = tm_frames()
    rnd = random.Random(3)
    stream = bytearray()
    bad = 0
    for f in frames:
        raw = bytearray(frame_tm(f))
        if rnd.random() < 0.01:
            raw[rnd.randrange(4, len(raw))] ^= 1 << rnd.randrange(8)
            bad += 1
        stream += raw
    data = bytes(stream)

    def run(chunk: int, hook: bool = False) -> Callable[[], int]:
        def go() -> int:
            archived: list[bytes] = []
            d = TmDeframer(on_bad=(lambda octets, reason, offset: archived.append(octets)) if hook else None)
            n = 0
            for i in range(0, len(data), chunk):
                n += len(d.feed(data[i : i + chunk]))
            assert d.counters.bad_crc_frames == bad and n == len(frames) - bad
            assert len(archived) == (bad if hook else 0)
            return len(data)
        return go

    for chunk in (4096, 256, 64):
        t, n = _best(run(chunk))
        FIGURES[f"deframer_{chunk}_mb_per_s"] = n / t / 1e6
        print(f"TM deframer, 1% corrupted frames, {chunk}-octet chunks: {n / t / 1e6:.1f} MB/s "
              f"({len(frames)} frames, {bad} corrupted)")
    t, n = _best(run(256, hook=True))
    FIGURES["deframer_256_on_bad_mb_per_s"] = n / t / 1e6
    print(f"TM deframer, 1% corrupted frames, 256-octet chunks, on_bad archiving them: {n / t / 1e6:.1f} MB/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_json_option(ap)
    args = ap.parse_args()
    bench_tm_decode()
    bench_tc()
    bench_deframer()
    write_json(args.json, FIGURES, "protocols")


if __name__ == "__main__":
    main()
