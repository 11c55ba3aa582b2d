"""Packets retrieved from the rover's packet store (TM virtual channel `tm_store_vcid`) fill the
live channel's gaps in the export.

The rover frames packets on VC 0; the link loses a stretch of frames; the ground retrieves the
missing packets, and the rover resends them unchanged on the store's VC (with some that did
arrive, and one retrieved twice). The archive's export must be exactly the series the rover
sent: complete, in packet time order, each packet once, whole-archive and streamed alike.
"""

from __future__ import annotations

import csv
import importlib
from pathlib import Path

import numpy as np

from hil.gs.archive import KIND_TM, ArchiveWriter
from hil.gs.export import decode_archive, export_archive, iter_indexed
from hil.gs.mission import Mission
from hil.gs.synth import frames_of, synth_packets
from protocols.tm_frame import TmDemultiplexer

M = Mission.load()
STORE_VC: int = M.raw["mission"]["tm_store_vcid"]
TmFramer = importlib.import_module("firmware_py.tm_frame").TmFramer


def store_frames(packets: list[bytes]) -> list[bytes]:
    """The rover's own framer on the store's virtual channel, as the packet store uses it."""
    out: list[bytes] = []
    framer = TmFramer(M.scid, STORE_VC, M.tm_frame_length, write=lambda mv: out.append(bytes(mv)), asm=False)
    for p in packets:
        framer.put(p)
    framer.flush()
    return out


def write_archive(folder: Path, frames: list[bytes]) -> Path:
    w = ArchiveWriter(folder, fsync_interval_s=None)
    for i, f in enumerate(frames):
        w.append(KIND_TM, f, 1.7e9 + i * 0.01)
    w.close()
    return folder


def received(frames: list[bytes]) -> list[bytes]:
    demux = TmDemultiplexer(M.tm_frame_length, vcid=M.tm_vcid)
    return [p for f in frames for p in demux.feed(f) if (int.from_bytes(p[:2], "big") & 0x7FF) != 0x7FF]


def scenario(tmp_path: Path) -> tuple[Path, Path, list[bytes]]:
    """(archive with the gap filled from the store, archive of every frame, packets sent)."""
    packets, _ = synth_packets(M, 300, events_every=9, seed=5)
    live = frames_of(M, packets)
    lost = set(range(60, 75))  # a stretch of VC 0 frames the link lost
    kept = [f for i, f in enumerate(live) if i not in lost]
    got = set(received(kept))
    missing = [p for p in packets if p not in got]
    assert len(missing) > 20
    # the store resends the gap, the packets either side of it (which did arrive) and, on a
    # second retrieval, the gap's first packet again
    first = packets.index(missing[0])
    last = packets.index(missing[-1])
    resent = store_frames(packets[first - 2 : last + 3]) + store_frames([missing[0]])
    at = 150  # the retrieved frames arrive amid the live ones, well after the gap
    filled = kept[:at] + resent + kept[at:]
    return write_archive(tmp_path / "filled", filled), write_archive(tmp_path / "all", live), packets


def test_retrieved_packets_fill_the_gap_in_order_once(tmp_path: Path) -> None:
    filled, whole, packets = scenario(tmp_path)
    got = decode_archive(M, filled)
    want = decode_archive(M, whole)
    hk, ref = got["hk_rover"], want["hk_rover"]
    assert len(ref) == 300
    assert len(hk) == 300
    times = hk.columns["packet_time_s"]
    assert (np.diff(times) > 0).all()  # in packet time order, no duplicate
    for k in ref.columns:
        if k != "ground_time":
            assert np.array_equal(hk.columns[k], ref.columns[k]), k
    assert got["events"].columns["packet_time_s"].tolist() == want["events"].columns["packet_time_s"].tolist()
    assert len(got["events"]) == len(range(0, 300, 9))
    # a retrieved packet carries the ground time it arrived at: after the live ones around it
    gt = hk.columns["ground_time"]
    assert (np.diff(gt) < 0).sum() == 1  # back to the live channel's time after the filled gap


def test_without_the_store_the_export_has_the_gap(tmp_path: Path) -> None:
    filled, _, _ = scenario(tmp_path)
    live_only = decode_archive(M, filled)  # with the store's VC, then a mission without one
    raw = dict(M.raw)
    raw["mission"] = {k: v for k, v in M.raw["mission"].items() if k != "tm_store_vcid"}
    plain = decode_archive(Mission(raw, M.path), filled)
    assert len(plain["hk_rover"]) < 280 < len(live_only["hk_rover"]) == 300
    assert sum(i.retrieved for i in iter_indexed(M, filled, [])) > 0


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if not k.startswith("ground_time")} for r in csv.DictReader(f)]


def test_streamed_export_equals_the_complete_series_at_any_window(tmp_path: Path) -> None:
    filled, whole, _ = scenario(tmp_path)
    ref = export_archive(M, whole, tmp_path / "ref", "csv")
    for window in (4, 64, 100_000):
        out = tmp_path / f"w{window}"
        done = export_archive(M, filled, out, "csv", window=window)
        assert done.rows == ref.rows
        for name in ("hk_rover", "events"):
            assert rows(out / f"{name}.csv") == rows(tmp_path / "ref" / f"{name}.csv"), (window, name)
