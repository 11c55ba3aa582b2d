"""Archive -> decoded telemetry tables (CSV, JSON lines, Parquet), vectorised.

The decode never loops in Python per HK packet:
1. the archive's TM frame records are read as one numpy structured view per run;
2. frames of the TM virtual channel are split into runs of consecutive VC counts,
   and each run's data fields are laid end to end: the packet stream;
3. every frame's first header pointer is an anchor (a known packet start); the
   packets after each anchor are found by stepping all anchors at once
   (`start + length`), one numpy step per packet *within a frame*;
4. HK packets of one SID have one length: runs of them lying back to back in the
   stream are read with `np.frombuffer` through a structured dtype made from the
   dictionary, so a million packets are a few array operations;
5. calibration polynomials are applied to whole columns.
Events, verification reports and other low-rate packets are decoded one by one.

`export_archive` streams: it decodes a window of frames at a time (`iter_decoded`) and
writes each window's HK rows as they come (a Parquet row group, a stretch of CSV), while
the next window decodes, so memory stays a few windows whatever the archive's size.
A window reads one frame before it and AHEAD_FRAMES after it, and keeps the packets that
*start* in it: every packet is found exactly once, as by a decode of the whole archive.

Packets the ground retrieved from the rover's packet store come on their own virtual channel
(`tm_store_vcid`), reassembled on their own: each goes among the live channel's packets by its
packet time (`merge_retrieved`; its ground_time stays the time it arrived), and one the ground
already had is dropped. An archive with none (the common case) costs one comparison more; one
with some is decoded whole, since a retrieved packet may belong windows before its own.

Tables: one per HK SID; `events` (one `arg_<name>` column per argument name over all event
kinds: the union of columns, empty where an event has no such argument); `verification`
(each 1/x report with the command it reports on, joined on the request ID to the TC frames
the archive holds); `tc_sent`; `param_reports`; `ping`.

Integrity: frames were FECF-checked when received and each archive record carries a
CRC-32, so the per-packet CRC is not recomputed here (the slow decode path checks it).
"""

from __future__ import annotations

import csv
import functools
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hil.errors import FarsideError
from hil.gs.archive import KIND_TC, Record, iter_tm_blocks, read_tm_frames
from hil.gs.mission import TM_HEADER_OCTETS, Mission
from protocols.errors import ProtocolError
from protocols.pus import parse_tc_packet
from protocols.sdls import TC_AUTH_MASK, KeyStore
from protocols.tc_frame import TcFrame, parse_tc_frame

TM_FRAME_HEADER = 6
TM_FRAME_TRAILER = 6  # OCF 4 + FECF 2
FHP_NO_PACKET = 0x7FF
FHP_IDLE = 0x7FE
IDLE_APID = 0x7FF
EPOCH_UNIX = 1546482360.0  # 2019-01-03T02:26:00Z


@dataclass
class Table:
    """One decoded table: columns of equal length, with units."""

    name: str
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    enums: dict[str, list[str]] = field(default_factory=dict)  # column of codes -> label per code
    decimals: dict[str, int] = field(default_factory=dict)  # float column -> decimal places it carries

    def labels(self, name: str) -> np.ndarray:
        """An enum column as label strings (other columns as they are)."""
        col = self.columns[name]
        if name not in self.enums:
            return col
        return np.asarray(self.enums[name], dtype=object)[col.astype(np.int64)]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


@dataclass
class PacketIndex:
    """Where the complete packets are in the reassembled packet stream."""

    stream: np.ndarray  # uint8, all segments' data fields end to end
    starts: np.ndarray  # int64 packet start offsets, ascending
    lengths: np.ndarray  # int64 total packet lengths
    ground_time: np.ndarray  # float64 UNIX time of the frame holding each packet's start
    retrieved: int = 0  # packets from the packet store's virtual channel among them


def index_packets(mission: Mission, times: np.ndarray, frames: np.ndarray | list[np.ndarray]) -> PacketIndex:
    """Reassemble the packet stream of the TM virtual channel and find every packet in it.

    `frames` is an (n, frame_length) uint8 array or a list of them (views into the
    archive's bytes: the data fields are copied once, into the stream).
    """
    runs = frames if isinstance(frames, list) else [frames]
    runs = [r for r in runs if len(r)]
    flen = runs[0].shape[1] if runs else mission.tm_frame_length
    dlen = flen - TM_FRAME_HEADER - TM_FRAME_TRAILER
    if not runs:
        z = np.zeros(0, dtype=np.int64)
        return PacketIndex(np.zeros(0, np.uint8), z, z, np.zeros(0))
    head = np.concatenate([r[:, :TM_FRAME_HEADER] for r in runs]).astype(np.int64)
    b0, b1 = head[:, 0], head[:, 1]
    scid = ((b0 & 0x3F) << 4) | (b1 >> 4)
    vcid = (b1 >> 1) & 7
    bounds = np.cumsum([0] + [len(r) for r in runs]).tolist()
    ours = scid == mission.scid
    live = _index_vc(times, runs, head, bounds, np.flatnonzero(ours & (vcid == mission.tm_vcid)), dlen)
    store_vc = mission.raw["mission"].get("tm_store_vcid")
    if store_vc is None or store_vc == mission.tm_vcid:
        return live
    on_store = ours & (vcid == store_vc)
    if not on_store.any():  # the common case: nothing was retrieved
        return live
    # each packet's frame by row number, to place the retrieved packets among the live ones
    rows = np.arange(len(head), dtype=np.float64)
    live = _index_vc(rows, runs, head, bounds, np.flatnonzero(ours & (vcid == mission.tm_vcid)), dlen)
    store = _index_vc(rows, runs, head, bounds, np.flatnonzero(on_store), dlen)
    merged = merge_retrieved(live, store)
    merged.ground_time = times[merged.ground_time.astype(np.int64)]
    return merged


RETRIEVAL_WINDOW = 4096  # packets: how far from where it belongs a retrieved packet is placed and matched


def _packet_keys(idx: PacketIndex) -> tuple[np.ndarray, np.ndarray]:
    """(APID << 14 | sequence count, rover time in seconds or NaN) of each packet."""
    st, buf = idx.starts, idx.stream
    last = len(buf) - 1

    def at(off: int) -> np.ndarray:
        return buf[np.minimum(st + off, last)].astype(np.int64)

    key = (((at(0) << 8) | at(1)) & 0x7FF) << 14 | (((at(2) << 8) | at(3)) & 0x3FFF)
    coarse = (at(13) << 24) | (at(14) << 16) | (at(15) << 8) | at(16)
    t = coarse.astype(np.float64) + ((at(17) << 8) | at(18)) / 65536.0
    t[(idx.lengths < TM_HEADER_OCTETS + 2) | ((at(0) & 0x08) == 0)] = np.nan  # no secondary header
    return key, t


def merge_retrieved(live: PacketIndex, store: PacketIndex, window: int = RETRIEVAL_WINDOW) -> PacketIndex:
    """The live channel's packets with the packet store's (retrieved) ones among them, in
    packet time order, without duplicates.

    Both indexes' `ground_time` are frame numbers (archive order). The live packets keep
    their order; a retrieved packet goes after the last live packet, among the `window` live
    packets received before it, whose packet time is not later than its own. A retrieved
    packet is dropped when a packet with its APID, sequence count and octets lies within
    `window` packets of that place (the 14-bit count wraps), or was retrieved already;
    idle packets of the store's channel are dropped.
    """
    lkey, lt = _packet_keys(live)
    skey, stime = _packet_keys(store)
    at = np.searchsorted(live.ground_time, store.ground_time, side="right")
    n = len(live.starts)
    place: list[int] = []
    kept: list[int] = []
    seen: dict[bytes, int] = {}
    for j in range(len(store.starts)):
        if (skey[j] >> 14) == IDLE_APID:
            continue
        s0, ln = int(store.starts[j]), int(store.lengths[j])
        octets = store.stream[s0 : s0 + ln].tobytes()
        hi = int(at[j])
        lo = max(0, hi - window)
        before = np.flatnonzero(lt[lo:hi] <= stime[j])
        pos = lo + int(before[-1]) + 1 if len(before) else lo
        if abs(seen.get(octets, -2 * window - 1) - pos) <= window:
            continue  # retrieved twice
        same = lo + np.flatnonzero(lkey[lo : min(n, hi + window)] == skey[j])
        if any(
            int(live.lengths[i]) == ln and live.stream[int(live.starts[i]) : int(live.starts[i]) + ln].tobytes() == octets
            for i in same.tolist()
        ):
            continue  # the live copy arrived too
        seen[octets] = pos
        place.append(pos)
        kept.append(j)
    if not kept:
        return live
    k = np.asarray(kept, dtype=np.int64)
    where = np.concatenate((np.arange(n, dtype=np.int64), np.asarray(place, dtype=np.int64)))
    tier = np.concatenate((np.ones(n, np.int64), np.zeros(len(k), np.int64)))  # retrieved before the live one there
    order = np.lexsort((np.arange(len(where)), tier, where))
    stream = np.concatenate((live.stream, store.stream))
    starts = np.concatenate((live.starts, store.starts[k] + len(live.stream)))[order]
    lengths = np.concatenate((live.lengths, store.lengths[k]))[order]
    ground = np.concatenate((live.ground_time, store.ground_time[k]))[order]
    return PacketIndex(stream, starts, lengths, ground, retrieved=len(k))


def _index_vc(
    times: np.ndarray, runs: list[np.ndarray], head: np.ndarray, bounds: list[int], on_vc: np.ndarray, dlen: int
) -> PacketIndex:
    """The packets of one virtual channel, whose frames are rows `on_vc` (ascending) of `runs`."""
    fhp = ((head[:, 4] & 7) << 8) | head[:, 5]
    fields = TM_FRAME_HEADER, TM_FRAME_HEADER + dlen
    # a frame repeating the previous one of the channel (VC and MC counts, data field) is the
    # link's duplicate: discarded, as the demultiplexer does (its packets were found once)
    mc, vcc = head[on_vc, 2], head[on_vc, 3]
    cand = np.flatnonzero((vcc[1:] == vcc[:-1]) & (mc[1:] == mc[:-1])) + 1
    if len(cand):
        a = _rows(runs, bounds, on_vc[cand])[:, fields[0] : fields[1]]
        b = _rows(runs, bounds, on_vc[cand - 1])[:, fields[0] : fields[1]]
        dup = np.zeros(len(on_vc), dtype=bool)
        dup[cand] = (a == b).all(axis=1)
        on_vc, vcc = on_vc[~dup], vcc[~dup]
    fhp = fhp[on_vc]
    # a break in the VC frame count (idle frames count too) ends a segment: a packet may not
    # span it; so does a pointer past the data field (the frame cannot be trusted)
    brk = np.ones(len(on_vc), dtype=bool)
    brk[1:] = vcc[1:] != ((vcc[:-1] + 1) & 0xFF)
    brk |= (fhp >= dlen) & (fhp != FHP_IDLE) & (fhp != FHP_NO_PACKET)
    seg_of_frame = np.cumsum(brk)
    data_frames = fhp != FHP_IDLE
    fhp, seg_of_frame = fhp[data_frames], seg_of_frame[data_frames]
    keep = np.zeros(len(head), dtype=bool)
    keep[on_vc[data_frames]] = True
    if keep.all():
        stream = np.concatenate([r[:, fields[0] : fields[1]] for r in runs]).reshape(-1)
    else:
        stream = np.concatenate(
            [r[keep[a:b], fields[0] : fields[1]] for r, a, b in zip(runs, bounds[:-1], bounds[1:], strict=True)]
        ).reshape(-1)
        times = times[keep]
    n = len(fhp)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return PacketIndex(np.zeros(0, np.uint8), z, z, np.zeros(0))
    seg_start = np.ones(n, dtype=bool)
    seg_start[1:] = seg_of_frame[1:] != seg_of_frame[:-1]
    seg_id = np.cumsum(seg_start) - 1
    has_anchor = fhp < dlen
    anchor_frame = np.flatnonzero(has_anchor)
    anchors = anchor_frame * dlen + fhp[anchor_frame]
    # each anchor's limit: the next anchor in the same segment, else its segment's end
    first_of_seg = np.flatnonzero(seg_start)
    seg_end_frame = np.append(first_of_seg[1:], n).astype(np.int64)
    limits = seg_end_frame[seg_id[anchor_frame]] * dlen
    same_seg_next = np.zeros(len(anchors), dtype=bool)
    same_seg_next[:-1] = seg_id[anchor_frame[1:]] == seg_id[anchor_frame[:-1]]
    limits[:-1] = np.where(same_seg_next[:-1], anchors[1:], limits[:-1])
    found_starts: list[np.ndarray] = []
    found_lengths: list[np.ndarray] = []
    cur, lim = anchors, limits
    total = len(stream)
    while len(cur):
        ok = cur + 6 <= lim
        cur, lim = cur[ok], lim[ok]
        if not len(cur):
            break
        length = ((stream[cur + 4].astype(np.int64) << 8) | stream[cur + 5]) + 7
        nxt = cur + length
        complete = nxt <= np.minimum(lim, total)
        found_starts.append(cur[complete])
        found_lengths.append(length[complete])
        more = complete & (nxt < lim)
        cur, lim = nxt[more], lim[more]
    starts = np.concatenate(found_starts) if found_starts else np.zeros(0, np.int64)
    lengths = np.concatenate(found_lengths) if found_lengths else np.zeros(0, np.int64)
    order = np.argsort(starts, kind="stable")
    starts, lengths = starts[order], lengths[order]
    return PacketIndex(stream, starts, lengths, times[starts // dlen])


def _rows(runs: list[np.ndarray], bounds: list[int], rows: np.ndarray) -> np.ndarray:
    """Whole frames by their index over all runs (a few: the candidates for a duplicate)."""
    run = np.searchsorted(bounds, rows, side="right") - 1
    return np.stack([runs[k][i - bounds[k]] for k, i in zip(run.tolist(), rows.tolist(), strict=True)])


CHUNK_ROWS = 8192  # rows per pass: a chunk of packets stays in cache while its columns are cut


def _pieces(stream: np.ndarray, starts: np.ndarray, length: int, dtype: np.dtype) -> Iterator[np.ndarray]:
    """Fixed-length packets at `starts` as structured arrays of at most CHUNK_ROWS rows.

    Packets lying back to back in the stream are viewed in place (np.frombuffer, no
    copy); scattered ones are gathered a chunk at a time.
    """
    if len(starts) == 0:
        return
    brk = np.flatnonzero(np.diff(starts) != length) + 1
    if len(brk) < len(starts) // 8:
        buf = stream.data
        bounds = np.concatenate(([0], brk, [len(starts)])).tolist()
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            for c in range(a, b, CHUNK_ROWS):
                k = min(CHUNK_ROWS, b - c)
                yield np.frombuffer(buf, dtype=dtype, count=k, offset=int(starts[a]) + (c - a) * length)
        return
    cols = np.arange(length, dtype=np.int64)
    for i in range(0, len(starts), CHUNK_ROWS):
        s = starts[i : i + CHUNK_ROWS]
        yield np.ascontiguousarray(stream[s[:, None] + cols]).view(dtype).reshape(len(s))


def _header_fields(stream: np.ndarray, starts: np.ndarray) -> dict[str, np.ndarray]:
    s = starts

    def u16(off: int) -> np.ndarray:
        return (stream[s + off].astype(np.int64) << 8) | stream[s + off + 1]

    return {
        "apid": u16(0) & 0x7FF,
        "type": (stream[s] >> 4) & 1,
        "service": stream[s + 7].astype(np.int64),
        "subservice": stream[s + 8].astype(np.int64),
    }


def rover_time(coarse: np.ndarray, fine: np.ndarray) -> np.ndarray:
    return coarse.astype(np.float64) + fine.astype(np.float64) / 65536.0


def hk_table(mission: Mission, sid: int, idx: PacketIndex, hdr: dict[str, np.ndarray]) -> Table:
    """The HK table of one SID, decoded column by column."""
    plen = mission.hk_packet_length(sid)
    sel = (
        (hdr["apid"] == mission.tm_apid)
        & (hdr["service"] == 3)
        & (hdr["subservice"] == 25)
        & (idx.lengths == plen)
    )
    cand = np.flatnonzero(sel)
    st = idx.starts[cand]
    sids = (idx.stream[st + TM_HEADER_OCTETS].astype(np.int64) << 8) | idx.stream[st + TM_HEADER_OCTETS + 1]
    mine = sids == sid
    st = st[mine]
    dt = mission.hk_dtype(sid)
    hk = mission.hk_packets[sid]
    params = hk.parameters
    n = len(st)
    # output columns, filled chunk by chunk (big-endian -> native in the copy)
    out: dict[str, np.ndarray] = {"_coarse": np.empty(n, np.uint32), "_fine": np.empty(n, np.uint16)}
    for p in params:
        if p.calibration:
            out[p.name] = np.empty(n, np.float64)
        else:
            out[p.name] = np.empty(n, dt[p.name].newbyteorder("="))
    # a linear calibration (raw * c) applied in the same pass, while the chunk is in cache
    linear = {p.name: float(p.calibration[1]) for p in params
              if p.calibration and len(p.calibration) == 2 and p.calibration[0] == 0}
    pos = 0
    for piece in _pieces(idx.stream, st, plen, dt):
        k = len(piece)
        for name, col in out.items():
            if name in linear:
                np.multiply(piece[name], linear[name], out=col[pos : pos + k])
            else:
                col[pos : pos + k] = piece[name]
        pos += k
    t = Table(hk.name.lower())
    t.columns["packet_time_s"] = rover_time(out["_coarse"], out["_fine"])
    t.decimals["packet_time_s"] = t.decimals["ground_time"] = 6  # as text: to the microsecond
    t.units["packet_time_s"] = "s"
    t.columns["ground_time"] = idx.ground_time[cand[mine]]
    t.units["ground_time"] = "s"
    for p in params:
        col = out[p.name]
        poly = p.calibration
        if poly:
            places = _decimal_places(poly)
            if places is not None:
                t.decimals[p.name] = places
            if p.name not in linear:
                x = col.copy()
                col[:] = 0.0
                for c in reversed(poly):  # Horner
                    col *= x
                    col += c
        elif p.enum is not None:
            labels = mission.enum(p.enum)
            t.enums[p.name] = [labels.get(i, str(i)) for i in range(256)]
        t.columns[p.name] = col
        if p.unit:
            t.units[p.name] = p.unit
    return t


def _decimal_places(poly: tuple[float, ...] | list[float]) -> int | None:
    """k when a calibration is `raw * 10**-k`: its values are exact k-place decimals."""
    if len(poly) != 2 or poly[0] != 0:
        return None
    for k in range(10):
        if poly[1] == 10.0**-k:
            return k
    return None


def _packet_rows(idx: PacketIndex, sel: np.ndarray) -> Iterator[tuple[float, float, bytes]]:
    """(ground time, rover time, source data) of the selected packets, one by one."""
    buf = idx.stream
    for i in np.flatnonzero(sel):
        s, n = int(idx.starts[i]), int(idx.lengths[i])
        pkt = buf[s : s + n].tobytes()
        rt = int.from_bytes(pkt[13:17], "big") + int.from_bytes(pkt[17:19], "big") / 65536
        yield float(idx.ground_time[i]), rt, pkt[TM_HEADER_OCTETS:-2]


def decode_archive(mission: Mission, archive: Path | str, keys: KeyStore | None = None) -> dict[str, Table]:
    """Every TM packet type of an archive as a table, and the TC frames sent (`keys`, else
    the key setting's, open their security: the archive holds no keys)."""
    ft = read_tm_frames(archive, mission.tm_frame_length, concatenate=False)
    idx = index_packets(mission, ft.times, ft.runs)
    tables = decode_index(mission, idx)
    tables["tc_sent"] = tc_table(mission, [r for r in ft.others if r.kind == KIND_TC], keys or _setting_keys())
    tables["verification"] = name_commands(tables["verification"], tables["tc_sent"], mission)
    return tables


# --- streaming ----------------------------------------------------------------------------

STREAM_FRAMES = 32768  # frames per window of a streamed decode (8 MiB of 256-octet frames)
AHEAD_FRAMES = 600  # frames read past a window's end: the longest packet (65,542 octets) fits


def _window(
    mission: Mission, first: int, block: tuple[np.ndarray, np.ndarray], before: tuple[np.ndarray, np.ndarray] | None,
    after: list[tuple[np.ndarray, np.ndarray]],
) -> PacketIndex:
    """The packets starting in `block` (times, frames), whose first frame is number `first`
    archive-wide, found with the frame `before` it and the frames `after` it as context."""
    parts = ([before] if before is not None else []) + [block] + after
    lo = first - (1 if before is not None else 0)
    times = np.concatenate([t for t, _ in parts]) if len(parts) > 1 else block[0]
    number = np.arange(lo, lo + len(times), dtype=np.float64)  # each packet's start frame, by number
    idx = index_packets(mission, number, [f for _, f in parts])
    keep = (idx.ground_time >= first) & (idx.ground_time < first + len(block[1]))
    row = idx.ground_time[keep].astype(np.int64) - lo
    return PacketIndex(idx.stream, idx.starts[keep], idx.lengths[keep], times[row], idx.retrieved)


def iter_indexed(
    mission: Mission, archive: Path | str, others: list[Record], window: int = STREAM_FRAMES
) -> Iterator[PacketIndex]:
    """The archive's packets, a window of `window` TM frames at a time, in archive order;
    records other than TM frames are appended to `others`."""
    pending: list[tuple[np.ndarray, np.ndarray]] = []  # the window's block, then the blocks after it
    before: tuple[np.ndarray, np.ndarray] | None = None
    first = 0

    def emit() -> PacketIndex:
        nonlocal before, first
        block = pending.pop(0)
        after: list[tuple[np.ndarray, np.ndarray]] = []
        need = AHEAD_FRAMES
        for t, f in pending:
            if need <= 0:
                break
            after.append((t[:need], f[:need]))
            need -= len(f)
        idx = _window(mission, first, block, before, after)
        before = (block[0][-1:].copy(), block[1][-1:].copy())  # not a view: the block can go
        first += len(block[1])
        return idx

    for block in iter_tm_blocks(archive, mission.tm_frame_length, others, block_frames=window):
        pending.append(block)
        while len(pending) > 1 and sum(len(f) for _, f in pending[1:]) >= AHEAD_FRAMES:
            yield emit()
    while pending:
        yield emit()


def iter_decoded(
    mission: Mission, archive: Path | str, others: list[Record], window: int = STREAM_FRAMES
) -> Iterator[dict[str, Table]]:
    """decode_index's tables, a window of `window` TM frames at a time, in archive order."""
    for idx in iter_indexed(mission, archive, others, window):
        yield decode_index(mission, idx)


def count_packets(mission: Mission, archive: Path | str) -> int:
    """How many TM packets (idle packets aside) an archive's frames carry."""
    n = 0
    for idx in iter_indexed(mission, archive, []):
        apid = ((idx.stream[idx.starts].astype(np.int64) << 8) | idx.stream[idx.starts + 1]) & 0x7FF
        n += int(np.count_nonzero(apid != IDLE_APID))
    return n


@dataclass
class Exported:
    """What an export wrote: rows per table and the files."""

    rows: dict[str, int]
    files: list[Path]


def export_archive(
    mission: Mission, archive: Path | str, out: Path, fmt: str, keys: KeyStore | None = None,
    window: int = STREAM_FRAMES,
) -> Exported:
    """Archive -> out/<table>.<fmt>, streamed: HK rows are written window by window (in a
    second thread, while the next window decodes); the low-rate tables at the end."""
    check_format(fmt)
    out.mkdir(parents=True, exist_ok=True)
    hk_names = {hk.name.lower() for hk in mission.hk_packets.values()}
    others: list[Record] = []
    writers: dict[str, _Writer] = {}
    low: dict[str, list[Table]] = {}
    rows: dict[str, int] = {}
    units: dict[str, dict[str, str]] = {}
    retrieved = False
    with ThreadPoolExecutor(1, thread_name_prefix="export-writer") as pool:
        pending: list[Future[None]] = []
        for idx in iter_indexed(mission, archive, others, window):
            if idx.retrieved:
                retrieved = True  # packets retrieved from the store: placed archive-wide, below
                break
            tables = decode_index(mission, idx)  # while the previous window is written
            for f in pending:
                f.result()
            pending = []
            for name, t in tables.items():
                if name not in hk_names:
                    low.setdefault(name, []).append(t)
                elif len(t):
                    if name not in writers:
                        writers[name] = WRITERS[fmt](out / f"{name}.{fmt}")
                        units[name] = t.units
                    rows[name] = rows.get(name, 0) + len(t)
                    pending.append(pool.submit(writers[name].write, t))
        for f in pending:
            f.result()
    files = []
    for w in writers.values():
        files.append(w.close())
    if retrieved:
        return _export_whole(mission, archive, out, fmt, keys)
    final = {name: concat_tables(parts) for name, parts in low.items()}
    final["tc_sent"] = tc_table(mission, [r for r in others if r.kind == KIND_TC], keys or _setting_keys())
    if "verification" in final:
        final["verification"] = name_commands(final["verification"], final["tc_sent"], mission)
    for name, t in final.items():
        if len(t):
            rows[name] = len(t)
            units[name] = t.units
            w = WRITERS[fmt](out / f"{name}.{fmt}")
            w.write(t)
            files.append(w.close())
    (out / "units.json").write_text(json.dumps(units, indent=1, sort_keys=True))
    return Exported(rows, files)


def _export_whole(mission: Mission, archive: Path | str, out: Path, fmt: str, keys: KeyStore | None) -> Exported:
    """The export of an archive holding packets retrieved from the rover's packet store: a
    retrieved packet may belong windows before the one it arrived in, so the archive is
    decoded whole (as `decode_archive`) and written at once, over the files the streamed
    attempt began."""
    tables = decode_archive(mission, archive, keys)
    files = write_tables(tables, out, fmt)
    return Exported({t.name: len(t) for t in tables.values() if len(t)}, files)


def _setting_keys() -> KeyStore | None:
    from hil.gs.keys import load_store, resolve_keys

    try:
        return load_store(resolve_keys(None).path)
    except FarsideError:
        return None


def _open_tc(raw: bytes, keys: KeyStore | None) -> TcFrame:
    """A TC frame with its security split per the SA (and decrypted) when `keys` has its SPI;
    else split as the legacy layout."""
    plain = parse_tc_frame(raw)
    sa = keys.sa(int.from_bytes(plain.data[:2], "big")) if keys is not None and len(plain.data) >= 2 else None
    if sa is None:
        return parse_tc_frame(raw, security=True)
    f = parse_tc_frame(raw, security=sa.suite.header_length)
    assert f.security_header is not None and f.mac is not None
    clear = sa.open(raw[:5], TC_AUTH_MASK, f.security_header, f.body, f.mac)
    if clear is None:
        raise ProtocolError(f"SPI {sa.spi}: the MAC does not verify with key {sa.key_id}")
    return replace(f, data=clear)


def tc_table(mission: Mission, records: list[Record], keys: KeyStore | None = None) -> Table:
    """The TC frames the ground sent: frame type, N(S), security, and the command in it."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("ground_time", "frame_type", "ns", "spi", "sdls_seq", "length", "command", "pus_seq", "args")
    }
    for r in records:
        try:
            f = _open_tc(r.payload, keys)
        except ProtocolError:
            continue
        command, pus_seq, args = "", -1, ""
        if f.control:
            command = "BC " + f.data.hex()
        else:
            try:
                pkt = parse_tc_packet(f.data)
                dec = mission.pd.decode_command(pkt.service, pkt.subservice, pkt.app_data)
                command, pus_seq = dec.name, pkt.seq_count
                args = " ".join(f"{v.name}={v.value}" for v in dec.values)
            except ProtocolError as exc:
                command = f"? ({exc})"
        rows["ground_time"].append(r.time)
        rows["frame_type"].append(f.frame_type.name)
        rows["ns"].append(f.frame_seq)
        rows["spi"].append(-1 if f.spi is None else f.spi)
        rows["sdls_seq"].append(-1 if f.sec_seq is None else f.sec_seq)
        rows["length"].append(len(r.payload))
        rows["command"].append(command)
        rows["pus_seq"].append(pus_seq)
        rows["args"].append(args)
    return _rows_table("tc_sent", rows, {"ground_time": "s", "length": "octets"})


def decode_index(mission: Mission, idx: PacketIndex) -> dict[str, Table]:
    hdr = _header_fields(idx.stream, idx.starts)
    tables: dict[str, Table] = {}
    for sid in mission.hk_packets:
        t = hk_table(mission, sid, idx, hdr)
        tables[t.name] = t
    rover = hdr["apid"] == mission.tm_apid
    # events 5/1..5/4
    ev_rows: dict[str, list[Any]] = {k: [] for k in ("ground_time", "packet_time_s", "severity", "event", "message")}
    ev_args: list[dict[str, Any]] = []
    sel = rover & (hdr["service"] == 5) & (hdr["subservice"] >= 1) & (hdr["subservice"] <= 4)
    for (gt, rt, data), sub in zip(_packet_rows(idx, sel), hdr["subservice"][sel].tolist(), strict=True):
        try:
            ev = mission.decode_event(sub, data)
        except ProtocolError:
            continue
        ev_rows["ground_time"].append(gt)
        ev_rows["packet_time_s"].append(rt)
        ev_rows["severity"].append(ev.severity)
        ev_rows["event"].append(ev.name)
        ev_rows["message"].append(ev.message)
        ev_args.append({v.name: v.value for v in ev.values})
    for name in sorted({k for a in ev_args for k in a}):
        ev_rows[f"arg_{name}"] = [a.get(name) for a in ev_args]
    tables["events"] = _rows_table("events", ev_rows, {"ground_time": "s", "packet_time_s": "s"})
    # verification 1/x
    stage = {1: "accepted", 2: "rejected", 3: "started", 4: "start_failed", 7: "completed", 8: "completion_failed"}
    vr: dict[str, list[Any]] = {k: [] for k in ("ground_time", "packet_time_s", "stage", "packet_id", "seq_control", "failure")}
    sel = rover & (hdr["service"] == 1)
    subs = hdr["subservice"][sel]
    for (gt, rt, data), sub in zip(_packet_rows(idx, sel), subs, strict=True):
        if len(data) < 4:
            continue
        vr["ground_time"].append(gt)
        vr["packet_time_s"].append(rt)
        vr["stage"].append(stage.get(int(sub), str(int(sub))))
        vr["packet_id"].append(int.from_bytes(data[0:2], "big"))
        vr["seq_control"].append(int.from_bytes(data[2:4], "big"))
        vr["failure"].append(mission.failure_name(int.from_bytes(data[4:6], "big")) if len(data) >= 6 else "")
    tables["verification"] = _rows_table("verification", vr, {"ground_time": "s", "packet_time_s": "s"})
    # parameter reports 20/2
    pr: dict[str, list[Any]] = {k: [] for k in ("ground_time", "packet_time_s", "param_id", "value")}
    for gt, rt, data in _packet_rows(idx, rover & (hdr["service"] == 20) & (hdr["subservice"] == 2)):
        if len(data) >= 6:
            pr["ground_time"].append(gt)
            pr["packet_time_s"].append(rt)
            pr["param_id"].append(int.from_bytes(data[:2], "big"))
            pr["value"].append(float(np.frombuffer(data[2:6], ">f4")[0]))
    tables["param_reports"] = _rows_table("param_reports", pr, {"ground_time": "s", "packet_time_s": "s"})
    pg: dict[str, list[Any]] = {"ground_time": [], "packet_time_s": []}
    for gt, rt, _ in _packet_rows(idx, rover & (hdr["service"] == 17) & (hdr["subservice"] == 2)):
        pg["ground_time"].append(gt)
        pg["packet_time_s"].append(rt)
    tables["ping"] = _rows_table("ping", pg, {"ground_time": "s", "packet_time_s": "s"})
    return tables


def _column(v: list[Any]) -> np.ndarray:
    """A list of values as a column: numbers as numbers, anything else (or a mix) as objects
    (strings; None where a row has no value)."""
    present = [x for x in v if x is not None]
    if present and all(isinstance(x, bool | int | float) for x in present) and len(present) == len(v):
        return np.array(v)
    if present and not all(isinstance(x, bool | int | float) for x in present):
        return np.array([None if x is None else str(x) for x in v], dtype=object)
    return np.array(v, dtype=object)


def _rows_table(name: str, rows: dict[str, list[Any]], units: dict[str, str]) -> Table:
    t = Table(name, units=dict(units))
    for k, v in rows.items():
        t.columns[k] = _column(v)
    return t


def concat_tables(parts: list[Table]) -> Table:
    """Tables of one kind (window by window) as one; a column missing from a part is empty
    (None) in its rows."""
    parts = [p for p in parts if len(p)] or parts[:1]
    first = parts[0]
    if len(parts) == 1:
        return first
    names: dict[str, None] = {}
    for p in parts:
        names.update(dict.fromkeys(p.columns))
    out = Table(first.name, units={k: v for p in parts for k, v in p.units.items()},
                enums={k: v for p in parts for k, v in p.enums.items()},
                decimals={k: v for p in parts for k, v in p.decimals.items()})
    for k in names:
        cols = [p.columns[k] if k in p.columns else np.full(len(p), None, dtype=object) for p in parts]
        if len({c.dtype for c in cols}) > 1 and any(c.dtype == object for c in cols):
            cols = [c.astype(object) for c in cols]
        out.columns[k] = np.concatenate(cols)
    return out


def name_commands(verification: Table, tc: Table, mission: Mission) -> Table:
    """The verification table with the command each report is about: its request ID (packet
    ID, sequence control) joined to the latest TC sent before the report with that APID and
    sequence count. Adds `command` and `command_args` ("" when the archive has no such TC)."""
    n = len(verification)
    names = np.full(n, "", dtype=object)
    args = np.full(n, "", dtype=object)
    if n and len(tc):
        sent: dict[int, list[tuple[float, str, str]]] = {}
        for t, cmd, seq, a in zip(tc.columns["ground_time"].tolist(), tc.columns["command"].tolist(),
                                  tc.columns["pus_seq"].tolist(), tc.columns["args"].tolist(), strict=True):
            if seq >= 0:
                sent.setdefault(int(seq), []).append((float(t), str(cmd), str(a)))
        apid = mission.tc_apid
        for i, (pid, sc, gt) in enumerate(zip(verification.columns["packet_id"].tolist(),
                                              verification.columns["seq_control"].tolist(),
                                              verification.columns["ground_time"].tolist(), strict=True)):
            if (pid & 0x7FF) != apid:
                continue
            before = [c for c in sent.get(sc & 0x3FFF, []) if c[0] <= gt] or sent.get(sc & 0x3FFF, [])
            if before:
                names[i], args[i] = before[-1][1], before[-1][2]
    out = Table(verification.name, dict(verification.columns), dict(verification.units), dict(verification.enums))
    out.columns["command"] = names
    out.columns["command_args"] = args
    return out


# --- writers ------------------------------------------------------------------


class _Writer:
    """One table's file, written a chunk of rows at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, t: Table) -> None:
        raise NotImplementedError

    def close(self) -> Path:
        return self.path


class _ParquetWriter(_Writer):
    """A row group per chunk (pyarrow ParquetWriter); dictionary encoding for enum columns only."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._w: Any = None

    def write(self, t: Table) -> None:
        import pyarrow.parquet as pq

        tab = _arrow_table(t)
        if self._w is None:
            self._w = pq.ParquetWriter(self.path, tab.schema, use_dictionary=list(t.enums) or False,
                                       compression="snappy")
        self._w.write_table(tab)

    def close(self) -> Path:
        if self._w is not None:
            self._w.close()
        return self.path


class _CsvWriter(_Writer):
    """Tables of integers, enums and exact decimals are formatted by numpy a chunk of rows at a
    time (`csv_rows`, then `squeeze` and the write in a second thread); any other table by
    pyarrow's CSV writer (or the csv module)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._w: Any = None
        self._f: Any = None
        self._fast: Any = None
        self._squeezer: Any = None
        self._pending: Future[None] | None = None
        self._chunks = 0

    def write(self, t: Table) -> None:
        if self._w is None and self._f is None and (self._fast is not None or csv_plan(t) is not None):
            if self._fast is None:
                self._fast = open(self.path, "wb")
                self._fast.write((",".join(_quote(h) for h in _header(t)) + "\n").encode())
                self._squeezer = ThreadPoolExecutor(1, thread_name_prefix="csv-squeeze")
            # a chunk's text is laid out here, and the first part of it squeezed, while the one
            # before is written in a second thread, which squeezes the rest of it first (a few
            # long numpy calls and the write: little contention for the GIL); a second thread
            # laying out chunks measured no faster
            for a in range(0, len(t), CSV_CHUNK_ROWS):
                rows = csv_rows(t, a, a + CSV_CHUNK_ROWS, spare=self._chunks % 2)
                self._chunks += 1
                cut = int(len(rows) * CSV_SQUEEZED_HERE) // SQUEEZE_ROWS * SQUEEZE_ROWS
                ready = squeeze(rows[:cut])
                if self._pending is not None:
                    self._pending.result()  # also: the scratch `rows` takes the turn after is free
                self._pending = self._squeezer.submit(self._put, ready, rows[cut:])
            return
        try:
            import pyarrow.csv as pacsv
        except ImportError:
            with open(self.path, "a" if self._f else "w", newline="") as f:
                w = csv.writer(f)
                if not self._f:
                    w.writerow(_header(t))
                w.writerows(zip(*[t.labels(k).tolist() for k in t.columns], strict=True))
            self._f = True
            return
        tab = _arrow_table(t, decode_enums=True).rename_columns(_header(t))
        if self._w is None:
            self._w = pacsv.CSVWriter(str(self.path), tab.schema)
        self._w.write_table(tab)

    def close(self) -> Path:
        if self._w is not None:
            self._w.close()
        if self._fast is not None:
            try:
                if self._pending is not None:
                    self._pending.result()
            finally:
                self._squeezer.shutdown()
                self._fast.close()
        return self.path

    def _put(self, ready: list[np.ndarray], rows: np.ndarray) -> None:
        self._fast.writelines(p.data for p in ready)
        self._fast.writelines(p.data for p in squeeze(rows))


# --- CSV text in bulk ----------------------------------------------------------------------------
# Each chunk of rows is laid out as a byte matrix, a fixed-width slot per field: separator,
# sign, digits (four at a time from a 10,000-entry table), decimal point, fraction; unused octets
# are zero and one mask drops them all (np.compress), leaving the CSV text. Values print exactly:
# integers as integers, a `raw * 10**-k` calibration as a k-place decimal of the raw value, times
# to the microsecond. On the bench's million HK packets (61 columns, 477 MB of text) this and
# the decode take about 2.8 s of CPU; pyarrow's CSV writer took 7 s for the writing alone (and
# prints floats by their shortest repr: 2572.1000000000004).

CSV_CHUNK_ROWS = 8192
CSV_SQUEEZED_HERE = 0.4  # of a chunk's rows squeezed by the thread laying them out, the rest by the writer's
SQUEEZE_ROWS = 1024  # rows per np.compress: its positions take 8 octets per octet kept
# four digits at a time: "0000".."9999", then each value without its leading zeros
# (right-aligned, empty octets before it), for the group that holds a number's first digit
_QUADS = np.frombuffer("".join(f"{i:04d}" for i in range(10000)).encode(), dtype="<u4")
_QUADS_LAST = np.concatenate((_QUADS, np.frombuffer(b"".join(str(i).encode().rjust(4, b"\0") for i in range(10000)),
                                                    dtype="<u4")))
_QUADS_MID = _QUADS_LAST.copy()
_QUADS_MID[10000] = 0  # a group left of the first digit: nothing
# a number's first two digits (a pair, beside the separator and sign): 0-99 without leading zeros
_TOPS_LAST = np.frombuffer(b"".join(str(i).encode().rjust(2, b"\0") for i in range(100)), dtype="<u2")
_TOPS_MID = _TOPS_LAST.copy()
_TOPS_MID[0] = 0  # digits follow in groups: a zero here is nothing


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text


def csv_plan(t: Table) -> list[tuple[str, str]] | None:
    """(column, how) for every column: "int", "dec" (exact decimals), "enum"; None when a
    column is none of these (the table then goes to the general writer)."""
    plan = []
    for k, col in t.columns.items():
        if k in t.enums:
            plan.append((k, "enum"))
        elif col.dtype.kind in "ib" or (col.dtype.kind == "u" and col.dtype.itemsize < 8):
            plan.append((k, "int"))
        elif col.dtype.kind == "f" and k in t.decimals:
            plan.append((k, "dec"))
        else:
            return None
    return plan


# the text matrix is built of 16-octet words: numpy turns a matrix of them (complex128, any
# 16-octet number will do) in half the time it takes for one of 8-octet words
_WORD = np.dtype(np.complex128)


def _pair(pv: np.ndarray, j: int) -> np.ndarray:
    """Octet pair `j` of every text row: a (n,) uint16 view into the (words, n, 8) matrix."""
    return pv[j >> 3, :, j & 7]


def _quad(qv: np.ndarray, j: int) -> np.ndarray:
    """Octets 4j..4j+3 of every text row: a (n,) uint32 view into the (words, n, 4) matrix."""
    return qv[j >> 2, :, j & 3]


def _number(qv: np.ndarray, at: int, groups: int, mag: np.ndarray) -> None:
    """`mag` (non-negative, uint32 or uint64) in the field at 4-octet group `at` (see `_quad`):
    its first two digits in the group's second pair (the first holds the separator and the
    sign), the rest in the `groups` groups after it, four digits each; leading zeros are empty
    octets (a lone 0 stays "0")."""
    v = mag
    for j in range(groups, 0, -1):
        q = v // 10000  # a division by a constant (np.divmod is several times slower)
        r = v - q * 10000
        np.add(r, 10000, out=r, where=q == 0)  # the leading group
        np.take(_QUADS_LAST if j == groups else _QUADS_MID, r, out=_quad(qv, at + j))
        v = q
    pv = qv.view(np.uint16)
    np.take(_TOPS_LAST if groups == 0 else _TOPS_MID, v, out=pv[at >> 2, :, 2 * (at & 3) + 1])


def _fraction(qv: np.ndarray, first: int, groups: int, fp: np.ndarray, scale: int) -> None:
    """"." and `fp` (< 10**scale) as `scale` digits, right-aligned in `groups` 4-octet groups."""
    v = fp
    for j in range(groups - 1, 0, -1):
        q = v // 10000
        np.take(_QUADS, v - q * 10000, out=_quad(qv, first + j))
        v = q
    top = _quad(qv, first)
    k = scale - 4 * (groups - 1)  # places in the first group (0-3), after the "."
    if k == 0:
        top[:] = ord(".") << 24
        return
    np.take(_QUADS, v, out=top)  # "0ddd" and the like: the zeros before the places give way
    top &= (0xFFFFFFFF << (8 * (4 - k))) & 0xFFFFFFFF
    top |= ord(".") << (8 * (3 - k))


@functools.lru_cache(maxsize=64)
def _label_table(labels: tuple[str, ...]) -> np.ndarray:
    """Enum labels (quoted where CSV needs it) after two empty octets (the separator's pair),
    zero-padded to a width of 4-octet groups, as (groups, labels) uint32: group g of every
    label in a row."""
    encoded = [b"\0\0" + _quote(x).encode() for x in labels]
    w = max(len(x) for x in encoded)
    table = np.zeros((len(encoded), -(-w // 4) * 4), dtype=np.uint8)
    for i, x in enumerate(encoded):
        table[i, : len(x)] = np.frombuffer(x, dtype=np.uint8)
    return np.ascontiguousarray(table.view("<u4").T)


def _narrow(v: np.ndarray) -> np.ndarray:
    """Non-negative integers as uint32 when they fit (numpy divides those much faster)."""
    return v.astype(np.uint32) if not len(v) or int(v.max()) < 1 << 32 else v.astype(np.uint64)


def _fits_raw(raw: np.ndarray) -> bool:
    """Whether scaled values (`col * 10**places`) are all below 2**31 in magnitude."""
    return len(raw) > 0 and max(float(raw.max()), -float(raw.min())) < 2.0**31


def _groups(mag: np.ndarray) -> int:
    """Groups of 4 digits after the first two for the largest of `mag`."""
    top = int(mag.max()) if len(mag) else 0
    return max(0, -(-(len(str(top)) - 2) // 4))


def csv_bytes(t: Table, a: int, b: int) -> bytes:
    """Rows [a, b) of `t` as CSV text (the table must have a `csv_plan`)."""
    return b"".join(p.data for p in csv_parts(t, a, b))


def csv_parts(t: Table, a: int, b: int) -> list[np.ndarray]:
    """Rows [a, b) of `t` as CSV text in a few uint8 arrays, to be written in turn."""
    return squeeze(csv_rows(t, a, b))


def csv_rows(t: Table, a: int, b: int, spare: int = 0) -> np.ndarray:
    """Rows [a, b) of `t` as CSV text padded with empty (zero) octets to one width: an
    (rows, width) uint8 matrix in this thread's scratch `spare` (0 or 1), good until the
    thread's next call with the same `spare`. `squeeze` makes it the text."""
    plan = csv_plan(t)
    assert plan is not None
    n = len(next(iter(t.columns.values()))[a:b])
    pieces: list[tuple[str, Any, int]] = []  # (how, values, width in octets)
    for k, how in plan:
        col = t.columns[k][a:b]
        if how == "enum":
            table = _label_table(tuple(t.enums[k]))
            pieces.append((how, (table, col.astype(np.intp)), 4 * len(table)))
            continue
        scale = 0 if how == "int" else t.decimals[k]
        if how == "int" and col.dtype.kind != "i":
            neg: np.ndarray | None = None  # unsigned: no sign to write
            mag = col.astype(np.uint32, copy=False)
        elif how == "int":
            neg = col < 0
            mag = _narrow(np.abs(col.astype(np.int64)))
        elif _fits_raw(raw := col * 10.0**scale):
            # a calibrated raw value: back to the raw integer, exactly, and split in integers
            np.rint(raw, out=raw)
            neg = raw < 0
            mag = np.abs(raw, out=raw).astype(np.uint32)
            ip = mag // 10**scale  # a division by a constant: far cheaper than np.divmod
            fp = mag - ip * 10**scale
            gi, gf = _groups(ip), (scale + 4) // 4  # "." and the places, right-aligned
            pieces.append(("dec", (neg, ip, fp, gi, gf, scale), 4 * (1 + gi + gf)))
            continue
        else:  # large values (times): the fraction split off in floating point, exactly
            unit = 10.0**scale
            a_ = np.abs(col)
            ipf = np.floor(a_)
            fpf = np.rint((a_ - ipf) * unit)  # the fraction is exact; rounded to the last place
            over = fpf >= unit  # 2.9999999999999996 -> 3.000
            ipf[over] += 1
            fpf[over] = 0
            neg = (col < 0) & ((ipf > 0) | (fpf > 0))  # no "-0.000"
            fp = fpf.astype(np.uint32)
            ip = _narrow(ipf.astype(np.uint64))
            gi, gf = _groups(ip), (scale + 4) // 4
            pieces.append(("dec", (neg, ip, fp, gi, gf, scale), 4 * (1 + gi + gf)))
            continue
        gi = _groups(mag)
        pieces.append(("int", (neg, mag, gi), 4 * (1 + gi)))
    # per field, from a 4-octet boundary: a pair of (the separator before it, its sign), a
    # pair of its first two digits, then its other digits four at a time (a 4-octet group from
    # a table); a label's octets four at a time after an empty pair. Built transposed, a row
    # of n 16-octet words per 16 octets of text (each write runs along a row), turned word by
    # word at the end (an eighth of the elements a pair-wise turn moves).
    width = sum(w for _, _, w in pieces) + 2
    words, turned = _scratch(-(-width // _WORD.itemsize), n, spare)
    words[-1] = 0  # octets past the newline in the last word; every other one is written below
    pv = words.view(np.uint16).reshape(len(words), n, _WORD.itemsize // 2)
    qv = words.view(np.uint32).reshape(len(words), n, _WORD.itemsize // 4)
    pos = 0  # in octets, a multiple of 4
    sep = 0
    for how, vals, w in pieces:
        head = _pair(pv, pos // 2)
        if how == "enum":
            table, codes = vals
            for j in range(len(table)):
                np.take(table[j], codes, out=_quad(qv, pos // 4 + j))
            head[:] = sep
        else:
            neg = vals[0]
            if neg is None:
                head[:] = sep
            else:
                np.multiply(neg, ord("-") << 8, out=head, casting="unsafe")
                head |= sep
            if how == "int":
                _, mag, gi = vals
                _number(qv, pos // 4, gi, mag)
            else:
                _, ip, fp, gi, gf, scale = vals
                _number(qv, pos // 4, gi, ip)
                _fraction(qv, pos // 4 + 1 + gi, gf, fp, scale)
        pos += w
        sep = ord(",")
    _pair(pv, pos // 2)[:] = ord("\n")
    np.copyto(turned, words.T)  # to rows of text
    return turned.view(np.uint8)


def squeeze(rows: np.ndarray) -> list[np.ndarray]:
    """Padded rows of text (`csv_rows`) as the text: the empty octets out (numpy lets go of
    the GIL), SQUEEZE_ROWS rows at a time."""
    parts: list[np.ndarray] = []
    for r in range(0, len(rows), SQUEEZE_ROWS):
        part = rows[r : r + SQUEEZE_ROWS].reshape(-1)
        parts.append(np.compress(part != 0, part))
    return parts


_SCRATCH = threading.local()


def _scratch(words: int, n: int, spare: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """This thread's (words, n) text matrix for a chunk and the (n, words) one it is
    turned into (one of two, by `spare`), reused chunk after chunk (fresh memory costs page
    faults every time)."""
    size = words * n
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None or len(bufs[0]) < size:
        bufs = _SCRATCH.bufs = [np.empty(size, dtype=_WORD) for _ in range(3)]
    return bufs[0][:size].reshape(words, n), bufs[1 + spare][:size].reshape(n, words)


class _JsonlWriter(_Writer):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        path.write_text("")

    def write(self, t: Table) -> None:
        cols = {k: t.labels(k).tolist() for k in t.columns}
        keys = list(cols)
        with open(self.path, "a") as f:
            for row in zip(*cols.values(), strict=True):
                f.write(json.dumps(dict(zip(keys, row, strict=True))) + "\n")


WRITERS: dict[str, type[_Writer]] = {"csv": _CsvWriter, "jsonl": _JsonlWriter, "parquet": _ParquetWriter}
PARQUET_NEEDS = "--format parquet needs pyarrow: pip install 'farside[parquet]'"


def check_format(fmt: str) -> None:
    """Refuse an export format this install cannot write (an unknown one, or Parquet without
    pyarrow, which `pip install -e .` leaves out) before anything is read or written."""
    if fmt not in WRITERS:
        raise FarsideError(f"export format must be csv, jsonl or parquet, got {fmt!r}")
    if fmt == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise FarsideError(PARQUET_NEEDS) from None


def write_tables(tables: dict[str, Table], out: Path, fmt: str) -> list[Path]:
    """Write each non-empty table as out/<name>.<ext>; returns the files written."""
    check_format(fmt)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    schema: dict[str, dict[str, str]] = {}
    for t in tables.values():
        if len(t) == 0:
            continue
        schema[t.name] = t.units
        w = WRITERS[fmt](out / f"{t.name}.{fmt}")  # the streamed export's writers, one chunk
        w.write(t)
        written.append(w.close())
    (out / "units.json").write_text(json.dumps(schema, indent=1, sort_keys=True))
    return written


def _arrow_table(t: Table, decode_enums: bool = False) -> Any:
    import pyarrow as pa  # present: check_format refused Parquet without it, pyarrow's CSV path has it

    fields = []
    arrays = []
    for k, v in t.columns.items():
        if k in t.enums:
            arr = pa.DictionaryArray.from_arrays(pa.array(v.astype(np.int32)), pa.array(t.enums[k]))
            if decode_enums:
                arr = arr.dictionary_decode()
        else:
            arr = pa.array(v.tolist()) if v.dtype == object else pa.array(v)
        meta = {"unit": t.units[k]} if k in t.units else None
        fields.append(pa.field(k, arr.type, metadata=meta))
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _header(t: Table) -> list[str]:
    return [f"{k} [{t.units[k]}]" if t.units.get(k) else k for k in t.columns]
