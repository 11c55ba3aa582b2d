"""The session archive: append-only, crash-safe, torn tails repaired, corruption reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.cli import main
from hil.gs.archive import (
    KIND_META,
    KIND_TC,
    KIND_TM,
    MAGIC,
    ArchiveWarning,
    ArchiveWriter,
    crc32_rows,
    encode_record,
    read_records,
    read_tm_frames,
    repair_part,
)

ROOT = Path(__file__).resolve().parents[2]


def _payload(i: int) -> bytes:
    return i.to_bytes(4, "big") * (1 + i % 70)


def test_records_come_back_in_order_with_times_and_kinds(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path / "s", fsync_interval_s=None) as w:
        for i in range(50):
            w.append(KIND_TM if i % 3 else KIND_TC, _payload(i), 1000.0 + i)
        w.append_json(KIND_META, {"event": "x"})
    recs = list(read_records(tmp_path / "s"))
    assert [r.payload for r in recs[:50]] == [_payload(i) for i in range(50)]
    assert [r.time for r in recs[:50]] == [1000.0 + i for i in range(50)]
    assert recs[1].kind == KIND_TM and recs[0].kind == KIND_TC
    assert recs[50].json() == {"event": "x"}


@given(st.integers(1, 40), st.integers(1, 300), st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_bulk_crc_of_many_records_equals_zlib_record_by_record(rows: int, octets: int, seed: int) -> None:
    import zlib

    import numpy as np

    data = np.random.default_rng(seed).integers(0, 256, (rows, octets + 4), dtype=np.uint8)[:, 2 : 2 + octets]
    assert crc32_rows(data).tolist() == [zlib.crc32(r.tobytes()) for r in data]


def test_a_bad_crc_deep_in_a_long_run_of_frames_is_found(tmp_path: Path) -> None:
    # 40,000 equal records: checked in bulk passes of many records; one bad one near the end
    with ArchiveWriter(tmp_path / "s", fsync_interval_s=None) as w:
        for i in range(40_000):
            w.append(KIND_TM, i.to_bytes(4, "big") * 64, 1.0 + i)
    part = tmp_path / "s" / "part-0001.fsa"
    data = bytearray(part.read_bytes())
    stride = len(encode_record(0.0, KIND_TM, bytes(256)))
    data[len(MAGIC) + 39_000 * stride + 20] ^= 0x10
    part.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [int.from_bytes(r.payload[:4], "big") for r in read_records(tmp_path / "s")]
    assert got == [i for i in range(40_000) if i != 39_000]
    assert any(f"offset {len(MAGIC) + 39_000 * stride}" in str(c.message) for c in caught)


def test_archive_rotates_by_size_and_reads_across_parts(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path / "s", rotate_bytes=4096, fsync_interval_s=None) as w:
        for i in range(200):
            w.append(KIND_TM, bytes(256), float(i))
    parts = sorted((tmp_path / "s").glob("part-*.fsa"))
    assert len(parts) > 10
    assert all(p.stat().st_size <= 4096 for p in parts)
    assert [r.time for r in read_records(tmp_path / "s")] == [float(i) for i in range(200)]


@given(cut=st.integers(min_value=0, max_value=10_000), n=st.integers(min_value=1, max_value=30))
def test_a_cut_anywhere_loses_only_the_torn_record(tmp_path_factory: pytest.TempPathFactory, cut: int, n: int) -> None:
    folder = tmp_path_factory.mktemp("cut")
    with ArchiveWriter(folder, fsync_interval_s=None) as w:
        for i in range(n):
            w.append(KIND_TM, _payload(i), float(i))
    part = folder / "part-0001.fsa"
    data = part.read_bytes()
    cut = min(cut, len(data))
    part.write_bytes(data[:cut])
    # the records wholly inside the cut
    ends = []
    o = len(MAGIC)
    for i in range(n):
        o += len(encode_record(float(i), KIND_TM, _payload(i)))
        ends.append(o)
    complete = sum(1 for e in ends if e <= cut)
    # reading skips the torn tail; reopening for append repairs it and carries on
    assert [r.payload for r in read_records(folder)] == [_payload(i) for i in range(complete)]
    with ArchiveWriter(folder, fsync_interval_s=None) as w:
        w.append(KIND_TC, b"after", 99.0)
    recs = list(read_records(folder))
    assert [r.payload for r in recs] == [_payload(i) for i in range(complete)] + [b"after"]


def _write(folder: Path, n: int, tm_len: int = 0) -> list[tuple[int, int, bytes]]:
    """n records (fixed-length TM runs when tm_len, else varied); returns (start, end, payload)."""
    spans = []
    with ArchiveWriter(folder, fsync_interval_s=None) as w:
        o = len(MAGIC)
        for i in range(n):
            payload = (i.to_bytes(4, "big") * 64)[:tm_len] if tm_len else _payload(i)
            kind = KIND_TM if tm_len else (KIND_TM, KIND_TC, KIND_META)[i % 3]
            w.append(kind, payload, float(i))
            rec = encode_record(float(i), kind, payload)
            spans.append((o, o + len(rec), payload))
            o += len(rec)
    return spans


def test_a_bad_record_mid_file_is_skipped_with_its_offset_and_the_rest_survives(tmp_path: Path) -> None:
    spans = _write(tmp_path / "s", 20)
    part = tmp_path / "s" / "part-0001.fsa"
    data = bytearray(part.read_bytes())
    data[spans[1][0] + 10] ^= 0xFF  # inside the second record
    part.write_bytes(bytes(data))
    with pytest.warns(ArchiveWarning, match=f"offset {spans[1][0]} fails its CRC; skipped {spans[1][1] - spans[1][0]} "):
        got = [r.payload for r in read_records(tmp_path / "s")]
    assert got == [p for i, (_, _, p) in enumerate(spans) if i != 1]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=2, max_value=60),
    tm=st.booleans(),
    hits=st.lists(st.integers(min_value=0, max_value=1 << 30), min_size=1, max_size=4),
    flips=st.lists(st.integers(min_value=1, max_value=255), min_size=4, max_size=4),
)
def test_random_corruption_loses_exactly_the_records_it_touches(
    tmp_path_factory: pytest.TempPathFactory, n: int, tm: bool, hits: list[int], flips: list[int]
) -> None:
    folder = tmp_path_factory.mktemp("corrupt")
    tm_len = 64 if tm else 0
    spans = _write(folder, n, tm_len)
    part = folder / "part-0001.fsa"
    original = part.read_bytes()
    data = bytearray(original)
    for h, x in zip(hits, flips, strict=False):
        data[h % len(data)] ^= x
    changed = [at for at in range(len(data)) if data[at] != original[at]]
    touched = {i for i, (a, b, _) in enumerate(spans) for at in changed if a <= at < b}
    part.write_bytes(bytes(data))
    want = [p for i, (_, _, p) in enumerate(spans) if i not in touched]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ArchiveWarning)
        if not want:
            return  # nothing good left: readers may call it "not an archive"
        assert [r.payload for r in read_records(folder)] == want
        if tm:  # the export's vectorised reader too
            table = read_tm_frames(folder, tm_len)
            assert [bytes(f) for f in table.frames] == want
        # repair saves exactly those, and the repaired part reads clean
        repair_part(part)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ArchiveWarning)
            assert [r.payload for r in read_records(folder)] == want


def test_the_writer_reopens_a_damaged_folder_in_a_new_part(tmp_path: Path) -> None:
    spans = _write(tmp_path / "s", 10)
    part = tmp_path / "s" / "part-0001.fsa"
    data = bytearray(part.read_bytes())
    data[spans[4][0] + 6] ^= 0x55
    part.write_bytes(bytes(data))
    with ArchiveWriter(tmp_path / "s", fsync_interval_s=None) as w:
        w.append(KIND_TC, b"after", 99.0)
        assert w.path.name == "part-0002.fsa"
    assert part.read_bytes() == bytes(data)  # the damaged part is left as it was
    with pytest.warns(ArchiveWarning):
        got = [r.payload for r in read_records(tmp_path / "s")]
    assert got == [p for i, (_, _, p) in enumerate(spans) if i != 4] + [b"after"]


def test_cli_warns_in_one_line_and_repair_saves_the_good_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spans = _write(tmp_path / "s", 12)
    part = tmp_path / "s" / "part-0001.fsa"
    data = bytearray(part.read_bytes())
    data[spans[3][0] + 1] ^= 0x80  # the length field itself
    part.write_bytes(bytes(data))
    assert main(["gs", "archive", "records", str(tmp_path / "s")]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("farside: warning: part-0001.fsa: ") and err.count("\n") == 1, err
    assert f"offset {spans[3][0]}" in err and len(out.splitlines()) == 11
    assert main(["gs", "archive", "repair", str(tmp_path / "s")]) == 0
    out, err = capsys.readouterr()
    assert f"dropped {spans[3][1] - spans[3][0]} octets" in out
    assert main(["gs", "archive", "check", str(tmp_path / "s")]) == 0
    out, err = capsys.readouterr()
    assert "11 records" in out and err == ""


def test_cli_reports_a_corrupt_archive_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "part-0001.fsa").write_bytes(b"not an archive at all")
    for args in (["gs", "export", str(folder), "--out", str(tmp_path / "o")], ["gs", "archive", "check", str(folder)],
                 ["gs", "replay", str(folder), "--once"], ["gs", "export", str(tmp_path / "missing"), "--out", "o"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("farside: error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err


WRITER = """
import sys, time
from hil.gs.archive import ArchiveWriter, KIND_TM
w = ArchiveWriter(sys.argv[1], rotate_bytes=int(sys.argv[2]), fsync_interval_s=None)
i = 0
while True:
    w.append(KIND_TM, i.to_bytes(4, "big") * (1 + i % 300), float(i))
    i += 1
    if i == 200:
        print("running", flush=True)
"""


@pytest.mark.parametrize("delay_s", [0.02, 0.07, 0.15])
def test_kill_9_mid_write_loses_no_complete_record(tmp_path: Path, delay_s: float) -> None:
    folder = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), "200000"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "running"
    time.sleep(delay_s)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    recs = list(read_records(folder))
    # every complete record is there, in order, intact: a gap-free prefix of what was written
    assert len(recs) >= 200
    for i, r in enumerate(recs):
        assert r.time == float(i)
        assert r.payload == i.to_bytes(4, "big") * (1 + i % 300)
    # reopening repairs any torn tail and appends after the last complete record
    with ArchiveWriter(folder, rotate_bytes=200000, fsync_interval_s=None) as w:
        w.append(KIND_TC, b"resumed", -1.0)
    again = list(read_records(folder))
    assert len(again) == len(recs) + 1 and again[-1].payload == b"resumed"
