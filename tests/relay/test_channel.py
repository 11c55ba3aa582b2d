"""The relay's link model (hil/relay/channel.py): timing, errors, outages, reproducibility."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from hil.relay.capture import Direction
from hil.relay.channel import (
    ASM,
    TC_START,
    BitErrors,
    FrameSplitter,
    Relay,
    fixed_length,
    tc_length,
)
from hil.relay.profile import (
    DirectionConfig,
    GilbertElliott,
    RelayProfile,
    Visibility,
    parse_schedule,
)
from protocols.tc_frame import build_bd_frame


def tc(n: int = 0, size: int = 20) -> bytes:
    return TC_START + build_bd_frame(171, 1, bytes([n & 0xFF]) * size)


def tm(n: int = 0, length: int = 256) -> bytes:
    return ASM + bytes([n & 0xFF]) * length


def profile(up: DirectionConfig | None = None, down: DirectionConfig | None = None, vis: Visibility | None = None) -> RelayProfile:
    return RelayProfile("test", up or DirectionConfig(), down or DirectionConfig(), vis or Visibility())


def run_until_idle(relay: Relay, limit: int = 100000) -> list[tuple[float, str, bytes]]:
    out = []
    for _ in range(limit):
        t = relay.next_time()
        if t is None:
            return out
        out += [(t, "rover", d) for d in relay.to_rover(t)]
        out += [(t, "ground", d) for d in relay.to_ground(t)]
    raise AssertionError("relay never went idle")


def test_delivered_delay_is_serialisation_plus_propagation() -> None:
    cfg = DirectionConfig(delay_s=1.75, rate_bps=125)
    relay = Relay(profile(up=cfg))
    frame = tc(size=20)
    relay.from_ground(10.0, frame)
    (t, side, data), = run_until_idle(relay)
    assert side == "rover" and data == frame
    assert t == pytest.approx(10.0 + len(frame) * 8 / 125 + 1.75, abs=1e-9)


def test_rate_limit_queues_frames_back_to_back_at_the_bit_rate() -> None:
    cfg = DirectionConfig(delay_s=0.5, rate_bps=1000)
    relay = Relay(profile(up=cfg))
    frames = [tc(i, 30) for i in range(10)]
    relay.from_ground(0.0, b"".join(frames))
    out = run_until_idle(relay)
    assert [d for _, _, d in out] == frames
    gaps = [b[0] - a[0] for a, b in zip(out, out[1:], strict=False)]
    assert gaps == pytest.approx([len(frames[0]) * 8 / 1000] * 9, abs=1e-9)
    total_bits = sum(len(f) * 8 for f in frames)
    assert out[-1][0] == pytest.approx(total_bits / 1000 + 0.5)


def test_frames_arriving_later_wait_only_for_a_busy_transmitter() -> None:
    relay = Relay(profile(down=DirectionConfig(delay_s=0, rate_bps=260 * 8)))  # 1 frame/s
    relay.from_rover(0.0, tm(1))
    relay.from_rover(0.5, tm(2))  # transmitter busy until 1.0
    relay.from_rover(5.0, tm(3))  # idle: goes at once
    times = [t for t, _, _ in run_until_idle(relay)]
    assert times == pytest.approx([1.0, 2.0, 6.0])


def test_geometry_delay_is_distance_over_c() -> None:
    from hil.relay.profile import profile_from_json

    p = profile_from_json({"uplink": {"delay_s": {"earth_l2_km": 455000, "l2_moon_km": 70000}}})
    assert p.uplink.delay_s == pytest.approx(525000 / 299792.458)
    assert 1.74 < p.uplink.delay_s < 1.76


def test_ber_statistics_match_the_configured_rate() -> None:
    errs = BitErrors(1e-3, None, random.Random(5))
    flips = sum(errs.apply(bytearray(1250)) for _ in range(400))  # 4e6 bits
    expected = 4e6 * 1e-3
    assert abs(flips - expected) < 5 * math.sqrt(expected)


def test_gilbert_elliott_bursts_have_the_right_mean_and_cluster() -> None:
    ge = GilbertElliott(p_enter=1e-4, p_exit=1e-2, ber=0.2)
    cfg = DirectionConfig(ber=1e-6, burst=ge)
    errs = BitErrors(cfg.ber, ge, random.Random(11))
    per_block = [errs.apply(bytearray(125)) for _ in range(20000)]  # 2e7 bits in 1000-bit blocks
    mean = sum(per_block) / (len(per_block) * 1000)
    assert mean == pytest.approx(cfg.mean_ber(), rel=0.25)
    # bursts: errors are far more clustered than Poisson (variance >> mean per block)
    assert statistics.pvariance(per_block) > 5 * statistics.fmean(per_block)
    # and most blocks are clean
    assert sum(1 for n in per_block if n == 0) / len(per_block) > 0.8


def test_frame_loss_and_duplication_rates_are_roughly_right() -> None:
    cfg = DirectionConfig(frame_loss=0.1, frame_duplication=0.2)
    relay = Relay(profile(down=cfg), seed=3)
    for i in range(4000):
        relay.from_rover(float(i), tm(i, 256))
    run_until_idle(relay)
    s = relay.downlink.stats
    assert s.frames_in == 4000
    assert 300 < s.frames_lost < 500
    assert 0.15 * 3600 < s.frames_duplicated < 0.25 * 3600
    assert s.frames_out == 4000 - s.frames_lost + s.frames_duplicated


def test_outage_stores_frames_and_forwards_them_when_visible_again() -> None:
    vis = Visibility((parse_schedule({"period_s": 100, "outages": [[10, 20]]}, "test"),))
    relay = Relay(profile(up=DirectionConfig(delay_s=1.0, rate_bps=800), vis=vis))
    f = tc(1, 91)  # 100 octets with EB90: 1 s at 800 bit/s
    assert len(f) == 100
    relay.from_ground(12.0, f)
    assert relay.outage(12.0)
    assert relay.to_rover(19.99) == []
    assert relay.uplink.stats.queue_octets == 100
    (t, _, data), = run_until_idle(relay)
    assert data == f and t == pytest.approx(20.0 + 1.0 + 1.0)
    # a frame that would not finish before the outage waits for the next window
    relay.from_ground(109.5, f)
    (t, _, _), = run_until_idle(relay)
    assert t == pytest.approx(120.0 + 2.0)


def test_buffer_overflow_is_counted_and_captured_never_silently_lost() -> None:
    captured: list[tuple[Direction, float, bytes]] = []

    class Cap:
        def write(self, d: Direction, t: float, data: bytes) -> None:
            captured.append((d, t, bytes(data)))

        def close(self) -> None:
            pass

    vis = Visibility((parse_schedule({"outages": [[0, 50]]}, "test"),))
    relay = Relay(profile(up=DirectionConfig(buffer_octets=250), vis=vis), capture=Cap())  # type: ignore[arg-type]
    frames = [tc(i, 91) for i in range(5)]
    for i, f in enumerate(frames):
        relay.from_ground(float(i), f)
    s = relay.uplink.stats
    assert (s.queue_units, s.overflow_units, s.overflow_octets) == (2, 3, 300)
    out = run_until_idle(relay)
    assert [d for _, _, d in out] == frames[:2] and out[0][0] == 50.0
    over = [c for c in captured if c[0] == Direction.UPLINK_OVERFLOW]
    assert [c[2] for c in over] == frames[2:]
    s_in = sum(len(c[2]) for c in captured if c[0] == Direction.GROUND_IN)
    s_out = sum(len(c[2]) for c in captured if c[0] == Direction.ROVER_OUT)
    assert s_in == s_out + s.overflow_octets


def test_same_seed_same_run_other_seed_other_run() -> None:
    def run(seed: int) -> list[tuple[float, str, bytes]]:
        cfg = DirectionConfig(delay_s=0.1, rate_bps=1e5, ber=1e-3, frame_loss=0.05, frame_duplication=0.05,
                              burst=GilbertElliott(1e-4, 1e-2, 0.1))
        relay = Relay(profile(up=cfg, down=cfg), seed=seed)
        for i in range(200):
            relay.from_ground(i * 0.01, tc(i))
            relay.from_rover(i * 0.01, tm(i))
        return run_until_idle(relay)

    a, b, c = run(42), run(42), run(43)
    assert a == b
    assert a != c


def test_splitter_passes_garbage_through_and_keeps_frames_whole() -> None:
    sp = FrameSplitter(ASM, fixed_length(8))
    stream = b"hello" + ASM + b"ABCDEFGH" + b"\x1a\xcf" + b"xyz" + ASM + b"12345678"
    out = []
    for i in range(0, len(stream), 3):  # any chunking
        out += sp.feed(stream[i : i + 3])
    assert b"".join(d for d, _ in out) == stream
    assert [d for d, f in out if f] == [ASM + b"ABCDEFGH", ASM + b"12345678"]


def test_splitter_treats_an_impossible_tc_header_as_octets() -> None:
    sp = FrameSplitter(TC_START, tc_length)
    bad = TC_START + b"\xff\xff\xff\xff"  # version bits set: not a frame
    good = tc(7)
    out = sp.feed(bad + good)
    assert [d for d, f in out if f] == [good]
    assert b"".join(d for d, _ in out) == bad + good


def test_a_partial_frame_is_flushed_as_octets_after_a_quiet_spell() -> None:
    relay = Relay(profile(), flush_s=0.05)
    relay.from_ground(0.0, tc(1)[:10])
    assert relay.to_rover(0.01) == []
    out = run_until_idle(relay)
    assert [d for _, _, d in out] == [tc(1)[:10]] and out[0][0] == pytest.approx(0.05)
    assert relay.uplink.stats.raw_units_in == 1
