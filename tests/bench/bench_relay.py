"""Relay and COP-1 benchmarks (figures, not pass/fail): `python -m tests.bench.bench_relay`.

1. Delay accuracy in real time: configured vs delivered one-way delay through the relay
   between two TCP endpoints on loopback, at 1.75 s and at 0 s (p50, p99 of the error).
2. Throughput at an unlimited rate on loopback: TM frames rover -> ground, MB/s.
3. COP-1 goodput under the queqiao profile at BER 1e-5 and 1e-4 (both directions),
   in virtual time, as a fraction of the ideal for that error rate: the uplink bit rate
   times the probability that a frame arrives intact, (1 - BER) ** frame_bits.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time

from hil import vclock
from hil.relay.channel import ASM, TC_START, Relay
from hil.relay.coplink import run_commands
from hil.relay.endpoints import TcpListenEndpoint
from hil.relay.profile import DirectionConfig, RelayProfile, load_profile
from hil.relay.runner import RelayRunner
from protocols.tc_frame import build_bd_frame
from tests.bench.report import add_json_option, write_json


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


async def _delay_run(delay_s: float, samples: int, spacing_s: float) -> list[float]:
    prof = RelayProfile("bench", DirectionConfig(delay_s=delay_s), DirectionConfig(delay_s=delay_s))
    ground, rover = TcpListenEndpoint("127.0.0.1", 0), TcpListenEndpoint("127.0.0.1", 0)
    runner = RelayRunner(Relay(prof), ground, rover)
    await runner.start()
    gr, gw = await asyncio.open_connection("127.0.0.1", ground.port)
    rr, rw = await asyncio.open_connection("127.0.0.1", rover.port)
    await asyncio.sleep(0.05)
    frame = TC_START + build_bd_frame(171, 1, bytes(20))
    sent: list[float] = []
    errors: list[float] = []

    async def receive() -> None:
        for i in range(samples):
            await rr.readexactly(len(frame))
            errors.append(time.monotonic() - sent[i] - delay_s)

    rx = asyncio.create_task(receive())
    for _ in range(samples):
        sent.append(time.monotonic())
        gw.write(frame)
        await gw.drain()
        await asyncio.sleep(spacing_s)
    await asyncio.wait_for(rx, delay_s + 10)
    gw.close()
    rw.close()
    await runner.stop()
    return errors


async def _throughput(total_mb: float) -> tuple[float, int]:
    ground, rover = TcpListenEndpoint("127.0.0.1", 0), TcpListenEndpoint("127.0.0.1", 0)
    runner = RelayRunner(Relay(load_profile("lab")), ground, rover)
    await runner.start()
    gr, gw = await asyncio.open_connection("127.0.0.1", ground.port)
    rr, rw = await asyncio.open_connection("127.0.0.1", rover.port)
    await asyncio.sleep(0.05)
    frame = ASM + bytes(256)
    block = frame * 256  # 66,560 octets
    n_blocks = max(1, int(total_mb * 1e6 / len(block)))
    total = n_blocks * len(block)

    async def drain_ground() -> None:
        left = total
        while left > 0:
            left -= len(await gr.read(1 << 20))

    t0 = time.perf_counter()
    rx = asyncio.create_task(drain_ground())
    for _ in range(n_blocks):
        rw.write(block)
        await rw.drain()
    await rx
    dt = time.perf_counter() - t0
    frames = runner.relay.downlink.stats.frames_out
    gw.close()
    rw.close()
    await runner.stop()
    return total / dt / 1e6, frames


def _goodput(ber: float, n: int, seeds: list[int]) -> dict[str, float]:
    base = load_profile("queqiao")
    prof = dataclasses.replace(
        base,
        name=f"queqiao-ber{ber:g}",
        uplink=dataclasses.replace(base.uplink, ber=ber),
        downlink=dataclasses.replace(base.downlink, ber=ber),
    )
    payload = bytes(20)
    frame_octets = 2 + 5 + 6 + len(payload) + 16 + 2  # EB90 + header + SDLS + data + MAC + FECF
    bits = frame_octets * 8
    assert base.uplink.rate_bps is not None
    ideal = base.uplink.rate_bps * (1 - ber) ** bits  # frame bits/s that can arrive intact
    fractions, retx, wall = [], 0, 0.0
    for seed in seeds:
        t0 = time.perf_counter()
        ground, rover, elapsed = vclock.run(run_commands("", [payload] * n, seed=seed, profile=prof))
        wall += time.perf_counter() - t0
        assert len(rover.delivered) == n, "COP-1 lost commands"
        goodput = n * bits / elapsed
        fractions.append(goodput / ideal)
        retx += ground.fop.stats.ad_retransmitted
    return {
        "frame_bits": bits,
        "p_frame_ok": (1 - ber) ** bits,
        "fraction_mean": statistics.fmean(fractions),
        "fraction_min": min(fractions),
        "retransmissions_per_command": retx / (n * len(seeds)),
        "wall_s": wall,
        "k": float(ground.fop.config.k),
        "t1_s": ground.fop.config.t1_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--commands", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    add_json_option(ap)
    args = ap.parse_args()
    figures: dict[str, object] = {}

    print("1. delay accuracy, real time, TCP loopback through the relay")
    for d in (1.75, 0.0):
        errs = asyncio.run(_delay_run(d, args.samples, 0.05))
        ms = [e * 1e3 for e in errs]
        figures[f"delay_{d:.2f}s_error_p50_ms"] = _pct(ms, 0.5)
        figures[f"delay_{d:.2f}s_error_p99_ms"] = _pct(ms, 0.99)
        print(f"   configured {d:.2f} s: error p50 {_pct(ms, 0.5):.3f} ms, p99 {_pct(ms, 0.99):.3f} ms, "
              f"min {min(ms):.3f} ms, max {max(ms):.3f} ms  (n={len(ms)})")

    print("2. throughput, unlimited rate (lab profile), TM frames over TCP loopback")
    mbs, frames = asyncio.run(_throughput(args.mb))
    figures["throughput_mb_per_s"] = mbs
    print(f"   {mbs:.1f} MB/s ({frames} frames of 260 octets)")

    print(f"3. COP-1 goodput under queqiao (125 bit/s up, 1.75 s each way), virtual time, "
          f"{args.commands} commands x {args.seeds} seeds")
    for ber in (1e-5, 1e-4):
        r = _goodput(ber, args.commands, list(range(1, args.seeds + 1)))
        figures[f"cop1_ber_{ber:g}"] = r
        print(f"   BER {ber:g}: goodput {r['fraction_mean']:.3f} of ideal (min {r['fraction_min']:.3f}); "
              f"frame {r['frame_bits']:.0f} bits, P(frame ok) {r['p_frame_ok']:.4f}; "
              f"K={r['k']:.0f} T1={r['t1_s']:.1f} s; {r['retransmissions_per_command']:.3f} retransmissions/command; "
              f"{r['wall_s']:.1f} s wall")
    write_json(args.json, figures, "relay")


if __name__ == "__main__":
    main()
