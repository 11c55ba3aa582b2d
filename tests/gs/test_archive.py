"""The session archive: append-only, crash-safe, torn tails repaired, corruption reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.cli import main
from hil.gs.archive import (
    KIND_META,
    KIND_TC,
    KIND_TM,
    MAGIC,
    ArchiveError,
    ArchiveWriter,
    encode_record,
    read_records,
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


def test_a_bad_record_before_good_ones_is_corruption_not_a_torn_tail(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path / "s", fsync_interval_s=None) as w:
        for i in range(20):
            w.append(KIND_TM, _payload(i), float(i))
    part = tmp_path / "s" / "part-0001.fsa"
    data = bytearray(part.read_bytes())
    data[len(MAGIC) + 40] ^= 0xFF  # inside the second record
    part.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="corrupt archive"):
        list(read_records(tmp_path / "s"))
    with pytest.raises(ArchiveError):
        repair_part(part)
    assert part.read_bytes() == bytes(data)  # nothing truncated


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
