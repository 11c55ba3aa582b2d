"""Synthetic telemetry built with the rover's own codec (firmware_py), for tests and benchmarks.

`synth_archive` writes an archive of TM frames carrying HK packets with varying
values, events and verification reports, exactly as the rover would frame them.
"""

from __future__ import annotations

import importlib
import random
import struct
from collections.abc import Callable
from pathlib import Path

from hil.gs.archive import KIND_TM, ArchiveWriter
from hil.gs.mission import NP_CODES, Mission
from protocols.dictionary import STRUCT_CODES, TYPE_BOUNDS

# the rover's codec, imported by name: it is MicroPython code, not type-checked with the host's
TmPacketBuilder = importlib.import_module("firmware_py.spacepacket").TmPacketBuilder
TmFramer = importlib.import_module("firmware_py.tm_frame").TmFramer


def random_hk_values(mission: Mission, sid: int, rng: random.Random) -> list[int | float]:
    vals: list[int | float] = []
    for p in mission.hk_packets[sid].parameters:
        t = p.type
        if t == "f32":
            vals.append(rng.uniform(-1000, 1000))
        elif p.enum is not None:
            vals.append(rng.choice(list(mission.enum(p.enum))))
        else:
            lo, hi = TYPE_BOUNDS[t]
            vals.append(rng.randint(int(lo), int(hi)))
    return vals


def synth_packets(
    mission: Mission, n_hk: int, *, seed: int = 1, events_every: int = 0, sid: int = 1
) -> tuple[list[bytes], list[list[int | float]]]:
    """`n_hk` HK packets (plus an event every `events_every`), and the HK raw values sent."""
    rng = random.Random(seed)
    t = [0, 0]

    def clock() -> tuple[int, int]:
        return t[0], t[1]

    b = TmPacketBuilder(apid=mission.tm_apid, clock=clock, max_data=512)
    st = struct.Struct(mission.pd.hk_struct_format(sid))
    packets: list[bytes] = []
    sent: list[list[int | float]] = []
    boot = mission.events_by_name["BOOT"]
    boot_fmt = ">H" + "".join(STRUCT_CODES[a.type] for a in boot.args)
    for i in range(n_hk):
        t[0], t[1] = 1000 + i, (i * 7919) & 0xFFFF
        vals = random_hk_values(mission, sid, rng)
        packets.append(bytes(b.build(3, 25, st.pack(sid, *vals))))
        sent.append(vals)
        if events_every and i % events_every == 0:
            packets.append(bytes(b.pack(5, 1, boot_fmt, boot.id, 0x01000000, i & 0xFFFF, 0, mission.hash)))
    return packets, sent


def bulk_hk_packets(mission: Mission, n: int, *, seed: int = 1, sid: int = 1, events_every: int = 0) -> list[bytes]:
    """`n` HK packets with random values (numpy), built by the rover's packet builder."""
    import numpy as np

    rng = np.random.default_rng(seed)
    params = mission.hk_packets[sid].parameters
    dt = np.dtype([("sid", ">u2")] + [(p.name, NP_CODES[p.type]) for p in params])
    rows = np.zeros(n, dtype=dt)
    rows["sid"] = sid
    for p in params:
        if p.type == "f32":
            rows[p.name] = rng.uniform(-1000, 1000, n)
        elif p.enum is not None:
            rows[p.name] = rng.choice(list(mission.enum(p.enum)), n)
        else:
            lo, hi = TYPE_BOUNDS[p.type]
            rows[p.name] = rng.integers(int(lo), int(hi), n, endpoint=True)
    raw = rows.tobytes()
    size = dt.itemsize
    t = [0, 0]
    b = TmPacketBuilder(apid=mission.tm_apid, clock=lambda: (t[0], t[1]), max_data=512)
    boot = mission.events_by_name["BOOT"]
    boot_fmt = ">H" + "".join(STRUCT_CODES[a.type] for a in boot.args)
    out: list[bytes] = []
    for i in range(n):
        t[0] = 1000 + i
        out.append(bytes(b.build(3, 25, raw[i * size : (i + 1) * size])))
        if events_every and i % events_every == 0:
            out.append(bytes(b.pack(5, 1, boot_fmt, boot.id, 0x01000000, i & 0xFFFF, 0, mission.hash)))
    return out


def frames_of(
    mission: Mission, packets: list[bytes], clcw: Callable[[], int] | None = None, first_count: int = 0
) -> list[bytes]:
    """The TM frames (no ASM) the rover's framer makes of `packets`, flushed at the end;
    the first frame's master and virtual channel counts are `first_count` (mod 256)."""
    out: list[bytes] = []
    framer = TmFramer(
        mission.scid, mission.tm_vcid, mission.tm_frame_length,
        write=lambda mv: out.append(bytes(mv)), clcw=clcw, asm=False,
    )
    framer.mc = framer.vc = first_count & 0xFF
    for p in packets:
        framer.put(p)
    framer.flush()
    return out


def synth_archive(folder: Path, mission: Mission, frames: list[bytes], t0: float = 1.7e9, dt: float = 0.01) -> ArchiveWriter:
    w = ArchiveWriter(folder, fsync_interval_s=None)
    for i, f in enumerate(frames):
        w.append(KIND_TM, f, t0 + i * dt)
    w.close()
    return w
