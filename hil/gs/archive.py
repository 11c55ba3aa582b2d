"""Session archive: every frame received and sent, append-only, crash-safe.

One archive per session: a folder holding numbered part files, rotated by size.
A part file is an 8-octet magic followed by records:

    length u32 BE | body (length octets) | crc32(length + body) u32 BE
    body = time f64 BE (UNIX seconds) | kind u8 | payload

Each record goes to the file in a single unbuffered `write` on an O_APPEND
descriptor, so killing the writer at any moment can only leave a torn *last*
record. Opening a part (for reading or appending) finds that torn tail and the
writer truncates it ("repair"). A bad record with good records after it is
corruption, not a torn tail: readers skip it with an `ArchiveWarning` naming its
offset and resynchronise on the next record whose length and CRC-32 check, so every
good record before and after it survives; the writer leaves such a part alone and
starts a new one; `repair_part` rewrites it with its good records only.
"""

from __future__ import annotations

import functools
import json
import mmap
import os
import queue
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hil.errors import FarsideError

MAGIC = b"FSARC\x00\x01\n"
PART_GLOB = "part-*.fsa"

# record kinds
KIND_TM = 1  # a TM transfer frame that passed its FECF check
KIND_TM_BAD = 2  # a TM frame that failed its FECF check (raw octets)
KIND_TC = 3  # a TC frame as sent (after security, before stream framing)
KIND_META = 4  # JSON: session start, link url, dictionary hash
KIND_LINK = 5  # JSON: link went down / came back

KIND_NAMES = {KIND_TM: "tm", KIND_TM_BAD: "tm_bad", KIND_TC: "tc", KIND_META: "meta", KIND_LINK: "link"}

_LEN = struct.Struct(">I")
_HEAD = struct.Struct(">dB")
_MAX_BODY = 1 << 20  # longer length fields are corruption, not records
_SCAN_PIECE = 32768  # records per bulk step of a scan: a mapped part's pages are let go behind it
DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024


# --- CRC-32 of many records at once ---------------------------------------------------------
# zlib's CRC-32 (reflected 0x04C11DB7, init and final XOR 0xFFFFFFFF) computed for a whole run
# of equal-length records together: one numpy step per 4 octets *of a record*, each step over
# every record of the run. The register update for one 32-bit word is linear in the register
# (after the word is XORed in), so it splits into two 65,536-entry tables, one per half.


def _crc_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t8 = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t8 = np.where(t8 & 1, (t8 >> 1) ^ np.uint32(0xEDB88320), t8 >> 1).astype(np.uint32)

    def four_zero_octets(reg: np.ndarray) -> np.ndarray:
        for _ in range(4):
            reg = t8[reg & 0xFF] ^ (reg >> 8)
        return reg

    x = np.arange(1 << 16, dtype=np.uint32)
    return t8, four_zero_octets(x), four_zero_octets(x << 16)


_T8, _T_LO, _T_HI = _crc_tables()
_CRC_ROWS = 16384  # records per pass: the transposed words of a pass stay in cache


def crc32_rows(rows: np.ndarray) -> np.ndarray:
    """zlib.crc32 of every row of a (n, m) uint8 array, as uint32, with no per-row Python."""
    n, m = rows.shape
    out = np.empty(n, dtype=np.uint32)
    head = m % 4
    words = (m - head) // 4
    lo = np.empty(min(n, _CRC_ROWS), dtype=np.intp)
    hi = np.empty_like(lo)
    tmp = np.empty(len(lo), dtype=np.uint32)
    for a in range(0, n, _CRC_ROWS):
        chunk = rows[a : a + _CRC_ROWS]
        k = len(chunk)
        c = np.full(k, 0xFFFFFFFF, dtype=np.uint32)
        for j in range(head):
            c = _T8[(c ^ chunk[:, j]) & 0xFF] ^ (c >> 8)
        cols = np.ascontiguousarray(chunk[:, head:]).view("<u4").T.copy()  # (words, k)
        lo_k, hi_k, tmp_k = lo[:k], hi[:k], tmp[:k]
        for j in range(words):
            np.bitwise_xor(c, cols[j], out=c)
            np.bitwise_and(c, 0xFFFF, out=lo_k, casting="unsafe")
            np.right_shift(c, 16, out=hi_k, casting="unsafe")
            np.take(_T_LO, lo_k, out=c)
            np.take(_T_HI, hi_k, out=tmp_k)
            np.bitwise_xor(c, tmp_k, out=c)
        out[a : a + k] = c ^ np.uint32(0xFFFFFFFF)
    return out


class ArchiveError(FarsideError):
    """An archive that cannot be read: no archive there, or a part with no good record."""


class ArchiveWarning(UserWarning):
    """Corrupt octets inside a part, skipped: the good records around them are kept."""


@dataclass(frozen=True)
class Skip:
    """A span of corrupt octets inside a part, between two good records."""

    offset: int
    length: int
    why: str

    def describe(self, part: str) -> str:
        return f"{part}: {self.why}; skipped {self.length} octets, resynchronised at offset {self.offset + self.length}"


@dataclass(frozen=True)
class Record:
    """One archived item: when (UNIX s), what kind, and its octets."""

    time: float
    kind: int
    payload: bytes

    def json(self) -> dict[str, object]:
        """The payload of a META or LINK record as a dict."""
        loaded: dict[str, object] = json.loads(self.payload.decode())
        return loaded


def encode_record(t: float, kind: int, payload: bytes) -> bytes:
    """The octets of one record."""
    body = _HEAD.pack(t, kind) + payload
    head = _LEN.pack(len(body))
    return head + body + _LEN.pack(zlib.crc32(body, zlib.crc32(head)))


@dataclass
class ScanResult:
    """Where a part's good records end and why scanning stopped there."""

    good_end: int  # offset after the last good record
    size: int
    records: int
    problem: str | None  # None: clean; else what stopped the scan (a torn tail)
    skipped: list[Skip] = field(default_factory=list)  # corrupt spans with good records after


def _scan_run(
    data: bytes | memoryview | mmap.mmap, o: int, *, offsets: list[np.ndarray] | None = None
) -> ScanResult:
    """Walk the records of one part from offset `o`; stop at the first incomplete or bad one.

    Runs of records of one length back to back (TM frames) are found and CRC-checked
    with numpy, a run at a time (`crc32_rows`); other records one by one.
    """
    n = len(data)
    mv = memoryview(data)
    u8 = np.frombuffer(data, dtype=np.uint8)
    count = 0
    crc32 = zlib.crc32
    unpack = _LEN.unpack_from
    while o < n:
        if o + 4 > n:
            return ScanResult(o, n, count, f"torn length field at offset {o}")
        (ln,) = unpack(mv, o)
        if ln < _HEAD.size or ln > _MAX_BODY:
            return ScanResult(o, n, count, f"record length {ln} at offset {o} is impossible")
        stride = ln + 8
        k = min((n - o) // stride, _SCAN_PIECE)
        run = 0
        if k >= 16 and bytes(mv[o + stride : o + stride + 4]) == bytes(mv[o : o + 4]):
            # how many records of this same length follow back to back
            offs = o + stride * np.arange(k, dtype=np.int64)
            lens = (
                u8[offs].astype(np.uint32) << 24 | u8[offs + 1].astype(np.uint32) << 16
                | u8[offs + 2].astype(np.uint32) << 8 | u8[offs + 3]
            )
            differ = np.flatnonzero(lens != ln)
            run = int(differ[0]) if len(differ) else k
        if run >= 16:
            # a run long enough for the bulk check (records of mixed lengths go one by one:
            # a bulk step per record costs a numpy pass per 4 octets of it)
            offs = offs[:run]
            crcs = (
                u8[offs + stride - 4].astype(np.uint32) << 24 | u8[offs + stride - 3].astype(np.uint32) << 16
                | u8[offs + stride - 2].astype(np.uint32) << 8 | u8[offs + stride - 1]
            )
            rows = u8[o : o + run * stride].reshape(run, stride)
            got = crc32_rows(rows[:, : stride - 4])
            bad = np.flatnonzero(got != crcs)
            good = int(bad[0]) if len(bad) else run
            if offsets is not None:
                offsets.append(offs[:good])
            count += good
            _release(data, o, o + good * stride)
            o += good * stride
            if good < run:
                return ScanResult(o, n, count, f"record at offset {o} fails its CRC")
            continue
        end = o + stride
        if end > n:
            return ScanResult(o, n, count, f"torn record at offset {o} ({n - o} of {stride} octets)")
        (crc,) = unpack(mv, end - 4)
        if crc32(mv[o : end - 4]) != crc:
            return ScanResult(o, n, count, f"record at offset {o} fails its CRC")
        if offsets is not None:
            offsets.append(np.array([o], dtype=np.int64))
        count += 1
        o = end
    return ScanResult(o, n, count, None)


def _release(data: bytes | memoryview | mmap.mmap, start: int, end: int) -> None:
    """Let go of a mapped part's pages in [start, end) once read: they stay in the page cache,
    but no longer count in this process's resident set (a whole archive is never resident)."""
    if isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        a = start - start % mmap.PAGESIZE
        b = end - end % mmap.PAGESIZE
        if b > a:
            data.madvise(mmap.MADV_DONTNEED, a, b - a)


def _scan(data: bytes | mmap.mmap, *, offsets: list[np.ndarray] | None = None) -> ScanResult:
    """Walk the records of one part. A bad record with a good one after it is skipped
    (listed in `skipped`) and the walk resumes there; one with none after it is a torn
    tail, which ends the walk (`problem`)."""
    n = len(data)
    if n < len(MAGIC):
        return ScanResult(0, n, 0, "no magic" if n else None)
    skipped: list[Skip] = []
    o = len(MAGIC)
    if bytes(data[: len(MAGIC)]) != MAGIC:
        nxt = _next_record(data, 0)
        if nxt is None:
            return ScanResult(0, n, 0, f"bad magic {bytes(data[:8]).hex()}, expected {MAGIC.hex()}")
        skipped.append(Skip(0, nxt, f"bad magic {bytes(data[:8]).hex()}"))
        o = nxt
    count = 0
    while True:
        res = _scan_run(data, o, offsets=offsets)
        count += res.records
        if res.problem is None:
            return ScanResult(res.good_end, n, count, None, skipped)
        nxt = _next_record(data, res.good_end)
        if nxt is None:
            return ScanResult(res.good_end, n, count, res.problem, skipped)
        skipped.append(Skip(res.good_end, nxt - res.good_end, res.problem))
        o = nxt


def good_records(part: Path) -> tuple[mmap.mmap | bytes, np.ndarray] | None:
    """A part's mapped octets and the offsets of its records whose CRC checks (corrupt spans
    skipped with a warning); None if it holds none."""
    data = _map(part)
    chunks: list[np.ndarray] = []
    check_part(part, data, chunks)
    if not chunks:
        return None
    return data, np.concatenate(chunks)


def check_part(path: Path, data: bytes | mmap.mmap | None = None, offsets: list[np.ndarray] | None = None) -> ScanResult:
    """Scan one part file. Corrupt spans with good records after them are skipped, each
    with an `ArchiveWarning` naming its offset; a part with no good record at all (not an
    archive) raises ArchiveError."""
    if data is None:
        data = path.read_bytes()
    res = _scan(data, offsets=offsets)
    if res.problem is not None and res.good_end == 0 and res.size >= len(MAGIC):
        raise ArchiveError(f"{path.name}: {res.problem}")
    for skip in res.skipped:
        warnings.warn(skip.describe(path.name), ArchiveWarning, stacklevel=2)
    return res


def _next_record(data: bytes | mmap.mmap, bad_at: int) -> int | None:
    """The offset of the first valid record (plausible length, CRC-32 good) after `bad_at`."""
    mv = memoryview(data)
    n = len(data)
    o = bad_at + 1
    while True:
        o = data.find(b"\x00", o, n)  # a record's length field starts with 00 (< 16 MiB)
        if o < 0 or o + 8 + _HEAD.size > n:
            return None
        (ln,) = _LEN.unpack_from(mv, o)
        end = o + 8 + ln
        if _HEAD.size <= ln <= _MAX_BODY and end <= n:
            (crc,) = _LEN.unpack_from(mv, end - 4)
            if zlib.crc32(mv[o : end - 4]) == crc:
                return o
        o += 1


def repair_part(path: Path) -> int:
    """Save what can be saved: truncate a torn tail, and rewrite a part with corrupt spans
    inside it from its good records only (through a temporary file and a rename, so a
    crash mid-repair leaves the part as it was). Returns the number of octets dropped."""
    data = path.read_bytes()
    offsets: list[np.ndarray] = []
    res = _scan(data, offsets=offsets)
    if res.problem is None and not res.skipped:
        return 0
    if not res.skipped:
        with open(path, "r+b") as f:
            f.truncate(res.good_end)
        return res.size - res.good_end
    mv = memoryview(data)
    tmp = path.with_suffix(".repair")
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        for o in (np.concatenate(offsets).tolist() if offsets else []):
            (ln,) = _LEN.unpack_from(mv, o)
            f.write(mv[o : o + 8 + ln])
        f.flush()
        os.fsync(f.fileno())
        kept = f.tell()
    os.replace(tmp, path)
    return len(data) - kept


def _first_time(part: Path) -> float:
    """The time of a part's first record (inf when it has none): sessions sort by it."""
    try:
        with open(part, "rb") as f:
            head = f.read(len(MAGIC) + 4 + _HEAD.size)
    except OSError:
        return float("inf")
    if len(head) < len(MAGIC) + 4 + _HEAD.size or head[: len(MAGIC)] != MAGIC:
        return float("inf")
    return float(_HEAD.unpack_from(head, len(MAGIC) + 4)[0])


def session_folders(root: Path | str) -> list[Path]:
    """The session folders of an archive root (folders holding part files), oldest first;
    a session folder given as `root` is its own only session."""
    root = Path(root)
    if not root.is_dir():
        raise ArchiveError(f"no archive at {root}: expected an archive root, a session folder or a .fsa part file")
    if any(root.glob(PART_GLOB)):
        return [root]
    found = [d for d in root.iterdir() if d.is_dir() and any(d.glob(PART_GLOB))]
    return sorted(found, key=lambda d: (_first_time(min(d.glob(PART_GLOB))), d.name))


def resolve_session(archive: Path | str, session: str | None) -> Path:
    """`--session NAME` under an archive root (a folder name, or a path), else the archive itself."""
    archive = Path(archive)
    if session is None:
        return archive
    for cand in (Path(session), archive / session):
        if cand.is_dir() and any(cand.glob(PART_GLOB)):
            return cand
    names = ", ".join(d.name for d in session_folders(archive)) if archive.is_dir() else ""
    raise ArchiveError(f"no session {session!r} in {archive}" + (f"; sessions: {names}" if names else ""))


def part_paths(archive: Path) -> list[Path]:
    """The part files of a session folder, of every session under an archive root (sessions
    oldest first), or a single part file, in order."""
    archive = Path(archive)
    if archive.is_file():
        return [archive]
    if not archive.is_dir():
        raise ArchiveError(f"no archive at {archive}: expected an archive root, a session folder or a .fsa part file")
    parts = sorted(archive.glob(PART_GLOB))
    if parts:
        return parts
    parts = [p for d in session_folders(archive) for p in sorted(d.glob(PART_GLOB))]
    if not parts:
        raise ArchiveError(f"{archive}: no {PART_GLOB} part files here, nor session folders holding them")
    return parts


@dataclass
class SessionSummary:
    """One session of an archive root, as `gs archive list` shows it."""

    folder: Path
    start: float | None  # UNIX s of the first record
    end: float | None  # of the last record
    records: int
    tm_frames: int
    tc_frames: int
    size: int  # octets of its part files
    parts: int


def summarise_session(folder: Path) -> SessionSummary:
    """Records, TM and TC frames, first and last record time of one session (records read in
    bulk; corrupt spans skipped with a warning, as readers do)."""
    parts = sorted(Path(folder).glob(PART_GLOB))
    start: float | None = None
    end: float | None = None
    records = tm = tc = size = 0
    for part in parts:
        size += part.stat().st_size
        checked = good_records(part)
        if checked is None:
            continue
        data, off = checked
        u8 = np.frombuffer(data, dtype=np.uint8)
        kinds = u8[off + 12]
        records += len(off)
        tm += int(np.count_nonzero(kinds == KIND_TM))
        tc += int(np.count_nonzero(kinds == KIND_TC))
        t0 = float(_HEAD.unpack_from(data, int(off[0]) + 4)[0])
        t1 = float(_HEAD.unpack_from(data, int(off[-1]) + 4)[0])
        start = t0 if start is None else min(start, t0)
        end = t1 if end is None else max(end, t1)
        _release(data, 0, len(data))
    return SessionSummary(Path(folder), start, end, records, tm, tc, size, len(parts))


class ArchiveWriter:
    """Appends records to a session folder, rotating parts by size.

    `ArchiveWriter(folder)` opens the folder's last part (repairing a torn tail)
    or starts part-0001.fsa. Every `append` is one unbuffered write.
    """

    def __init__(
        self,
        folder: Path | str,
        *,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
        fsync_interval_s: float | None = 1.0,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rotate_bytes = rotate_bytes
        self.fsync_interval_s = fsync_interval_s
        self.repaired_octets = 0
        self.records = 0
        self._fd = -1
        self._last_sync = time.monotonic()
        parts = sorted(self.folder.glob(PART_GLOB))
        if not parts:
            self._open(self.folder / "part-0001.fsa")
            return
        last = parts[-1]
        res = _scan(last.read_bytes())
        if res.skipped or (res.problem is not None and res.good_end == 0 and res.size >= len(MAGIC)):
            # Damaged inside, not just torn at the end: leave it for readers (who skip the
            # damage) and `gs archive repair`; go on in a new part.
            self.path = last
            self._rotate(close=False)
            return
        self.repaired_octets = repair_part(last)
        self._open(last)

    def _open(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.size = os.fstat(self._fd).st_size
        if self.size == 0:
            os.write(self._fd, MAGIC)
            self.size = len(MAGIC)

    def _rotate(self, close: bool = True) -> None:
        number = int(self.path.stem.split("-")[1]) + 1
        if close:
            os.close(self._fd)
        self._open(self.folder / f"part-{number:04d}.fsa")

    def append(self, kind: int, payload: bytes, t: float | None = None) -> None:
        """Append one record (time defaults to now)."""
        if self._fd < 0:
            raise ArchiveError(f"archive {self.folder} is closed")
        rec = encode_record(time.time() if t is None else t, kind, payload)
        if self.size + len(rec) > self.rotate_bytes and self.size > len(MAGIC):
            self._rotate()
        os.write(self._fd, rec)
        self.size += len(rec)
        self.records += 1
        if self.fsync_interval_s is not None:
            now = time.monotonic()
            if now - self._last_sync >= self.fsync_interval_s:
                os.fsync(self._fd)
                self._last_sync = now

    def append_json(self, kind: int, obj: dict[str, object], t: float | None = None) -> None:
        self.append(kind, json.dumps(obj, sort_keys=True).encode(), t)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def new_session_folder(root: Path | str, label: str = "session") -> Path:
    """A fresh folder under `root` named by UTC time: one archive per session."""
    root = Path(root)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = root / f"{label}-{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"{label}-{stamp}-{n}"
    return folder


def read_records(archive: Path | str, kinds: set[int] | None = None) -> Iterator[Record]:
    """Every complete record of an archive, in order (a torn tail is skipped)."""
    for part in part_paths(Path(archive)):
        data = part.read_bytes()
        chunks: list[np.ndarray] = []
        check_part(part, data, chunks)
        mv = memoryview(data)
        for o in (np.concatenate(chunks).tolist() if chunks else []):
            (ln,) = _LEN.unpack_from(mv, o)
            t, kind = _HEAD.unpack_from(mv, o + 4)
            if kinds is None or kind in kinds:
                yield Record(t, kind, bytes(mv[o + 4 + _HEAD.size : o + 4 + ln]))


@dataclass
class FrameTable:
    """TM frames of an archive as arrays: for vectorised decoding."""

    times: np.ndarray  # float64 UNIX seconds, one per frame
    frames: np.ndarray  # uint8 (n, frame_length); empty when read with concatenate=False
    runs: list[np.ndarray]  # the same frames as views into the archive's bytes, run by run
    others: list[Record]  # every record that is not a good TM frame (TC sent, link, meta)


def _map(part: Path) -> mmap.mmap | bytes:
    """The part's octets, memory-mapped (the page cache's pages, no private copy)."""
    with open(part, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


class _Feed(list[np.ndarray]):
    """An `offsets` list for the scan that hands each run of good records on as it is checked
    (its pages still hot) instead of keeping it."""

    def __init__(self, take: Callable[[np.ndarray], None]) -> None:
        super().__init__()
        self.take = take

    def append(self, offs: np.ndarray) -> None:
        self.take(offs)


class _Stop(Exception):
    """The reader of iter_tm_blocks went away."""


def iter_tm_blocks(
    archive: Path | str, frame_length: int, others: list[Record], block_frames: int = 32768
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The good TM frames of an archive, in order, as blocks of `block_frames` (the last one
    shorter): (times float64, frames uint8 (k, frame_length)), both copies. Every other
    record is appended to `others` (all of them by the end).

    One pass: a second thread checks each part's records (CRC-32 in bulk) and copies the
    frames out of the mapped part while its pages are hot, then lets the pages go; blocks
    come through a queue of two, so the resident set stays a few blocks whatever the size.
    """
    rec_len = 8 + _HEAD.size + frame_length
    tm_dtype = np.dtype(
        [("len", ">u4"), ("time", ">f8"), ("kind", "u1"), ("frame", "u1", (frame_length,)), ("crc", ">u4")]
    )
    blocks: queue.Queue[tuple[np.ndarray, np.ndarray] | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: tuple[np.ndarray, np.ndarray] | BaseException | None) -> None:
        while not stop.is_set():
            try:
                blocks.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Stop

    def produce() -> None:
        times = np.empty(block_frames)
        frames = np.empty((block_frames, frame_length), dtype=np.uint8)
        held = 0

        def take_run(data: mmap.mmap | bytes, first: int, count: int) -> None:
            nonlocal times, frames, held
            view = np.frombuffer(data, dtype=tm_dtype, count=count, offset=first)
            done = 0
            while done < count:
                k = min(count - done, block_frames - held)
                times[held : held + k] = view["time"][done : done + k]
                frames[held : held + k] = view["frame"][done : done + k]
                held += k
                done += k
                if held == block_frames:
                    put((times, frames))
                    times, frames, held = np.empty(block_frames), np.empty_like(frames), 0

        def take_one(data: mmap.mmap | bytes, mv: memoryview, o: int) -> None:
            (ln,) = _LEN.unpack_from(mv, o)
            t, kind = _HEAD.unpack_from(mv, o + 4)
            if ln == rec_len - 8 and kind == KIND_TM:
                take_run(data, o, 1)
            else:
                others.append(Record(t, kind, bytes(mv[o + 4 + _HEAD.size : o + 4 + ln])))

        def take(data: mmap.mmap | bytes, u8: np.ndarray, mv: memoryview, off: np.ndarray) -> None:
            first = int(off[0])
            if len(off) > 1 and u8[first : first + 4].tobytes() == _LEN.pack(rec_len - 8) and (
                (u8[off + 12] == KIND_TM).all()
            ):
                take_run(data, first, len(off))  # a bulk run of TM frames, back to back
                return
            for o in off.tolist():
                take_one(data, mv, o)

        try:
            for part in part_paths(Path(archive)):
                data = _map(part)
                u8 = np.frombuffer(data, dtype=np.uint8)
                mv = memoryview(data)
                check_part(part, data, _Feed(functools.partial(take, data, u8, mv)))
                del u8, mv
            if held:
                put((times[:held].copy(), frames[:held].copy()))
            put(None)
        except _Stop:
            pass
        except BaseException as exc:
            try:
                put(exc)
            except _Stop:
                pass

    worker = threading.Thread(target=produce, name="archive-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = blocks.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def read_tm_frames(archive: Path | str, frame_length: int, concatenate: bool = True) -> FrameTable:
    """All good TM frames of an archive as a (n, frame_length) array, without a per-record object."""
    times: list[np.ndarray] = []
    frames: list[np.ndarray] = []
    others: list[Record] = []
    rec_len = 8 + _HEAD.size + frame_length
    tm_dtype = np.dtype(
        [("len", ">u4"), ("time", ">f8"), ("kind", "u1"), ("frame", "u1", (frame_length,)), ("crc", ">u4")]
    )
    for part in part_paths(Path(archive)):
        checked = good_records(part)
        if checked is None:
            continue
        data, off = checked
        u8 = np.frombuffer(data, dtype=np.uint8)
        # runs of consecutive fixed-size TM records are read as one structured view each
        lens = (
            u8[off].astype(np.uint32) << 24
            | u8[off + 1].astype(np.uint32) << 16
            | u8[off + 2].astype(np.uint32) << 8
            | u8[off + 3]
        )
        kinds = u8[off + 4 + 8]
        is_tm = (lens == rec_len - 8) & (kinds == KIND_TM)
        mv = memoryview(data)
        for o, ln in zip(off[~is_tm].tolist(), lens[~is_tm].tolist(), strict=True):
            t, kind = _HEAD.unpack_from(mv, o + 4)
            others.append(Record(t, kind, bytes(mv[o + 4 + _HEAD.size : o + 4 + ln])))
        if not is_tm.any():
            continue
        idx = np.flatnonzero(is_tm)
        # split idx into runs where offsets are contiguous
        contiguous = np.diff(off[idx]) == rec_len
        breaks = np.flatnonzero(~contiguous) + 1
        for run in np.split(idx, breaks):
            view = np.frombuffer(data, dtype=tm_dtype, count=len(run), offset=int(off[run[0]]))
            times.append(view["time"].astype(np.float64))
            frames.append(view["frame"])
    empty = np.zeros((0, frame_length), dtype=np.uint8)
    if not frames:
        return FrameTable(np.zeros(0), empty, [], others)
    return FrameTable(np.concatenate(times), np.concatenate(frames) if concatenate else empty, frames, others)
