"""Export, plot and watch on telemetry framed by the rover's own codec.

The vectorised export is checked value for value against an independent decode:
protocols' TmDemultiplexer reassembles the packets, spacepackets parses them (and
checks their CRC), struct unpacks the parameters, and the calibration is applied
from the dictionary JSON.
"""

from __future__ import annotations

import csv
import importlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacepackets.ecss.tm import PusTm

from hil.gs.export import decode_archive, write_tables
from hil.gs.mission import Mission
from hil.gs.plot import event_positions, plot_parameters, plot_traverse, save_png, traverse_tracks
from hil.gs.state import GroundState
from hil.gs.synth import frames_of, synth_archive, synth_packets
from hil.gs.watch import render_to_string
from protocols.dictionary import STRUCT_CODES
from protocols.tm_frame import TmDemultiplexer

M = Mission.load()
NAMES = [p.name for p in M.hk_packets[1].parameters]
TmPacketBuilder = importlib.import_module("firmware_py.spacepacket").TmPacketBuilder


def independent_hk(frames: list[bytes]) -> list[dict[str, Any]]:
    """HK rows from frames, decoded packet by packet without hil.gs."""
    demux = TmDemultiplexer(M.tm_frame_length, vcid=M.tm_vcid)
    fmt = M.hk_packets[1].struct_format
    rows = []
    for f in frames:
        for raw in demux.feed(f):
            tm = PusTm.unpack(raw, timestamp_len=6)  # raises on a bad CRC
            if (tm.service, tm.message_subtype) != (3, 25):
                continue
            vals = struct.unpack(fmt, tm.source_data)[1:]
            row: dict[str, Any] = {"packet_time_s": int.from_bytes(tm.timestamp[:4], "big") + int.from_bytes(tm.timestamp[4:], "big") / 65536}
            for p, v in zip(M.hk_packets[1].parameters, vals, strict=True):
                if p.enum is not None:
                    row[p.name] = M.enum_label(p.enum, v)
                elif p.calibration is not None:
                    row[p.name] = sum(c * v**i for i, c in enumerate(p.calibration))
                else:
                    row[p.name] = v
            rows.append(row)
    return rows


def assert_same(table: Any, rows: list[dict[str, Any]]) -> None:
    assert len(table) == len(rows)
    for name in ["packet_time_s", *NAMES]:
        got = table.labels(name).tolist()
        want = [r[name] for r in rows]
        if isinstance(want[0], float) if want else False:
            assert np.allclose(np.array(got, dtype=float), np.array(want, dtype=float), rtol=1e-12, atol=0), name
        else:
            assert got == want, name


def test_export_agrees_value_for_value_with_an_independent_decode(tmp_path: Path) -> None:
    packets, _ = synth_packets(M, 400, events_every=7, seed=3)
    frames = frames_of(M, packets)
    synth_archive(tmp_path / "s", M, frames)
    tables = decode_archive(M, tmp_path / "s")
    assert_same(tables["hk_rover"], independent_hk(frames))
    assert len(tables["events"]) == len([i for i in range(400) if i % 7 == 0])
    assert set(tables["events"].columns["event"].tolist()) == {"BOOT"}


@settings(max_examples=25, deadline=None)
@given(drops=st.sets(st.integers(min_value=0, max_value=120), max_size=25), seed=st.integers(0, 1000))
def test_export_handles_lost_frames_like_the_demultiplexer(tmp_path_factory: pytest.TempPathFactory, drops: set[int], seed: int) -> None:
    packets, _ = synth_packets(M, 150, events_every=3, seed=seed)
    frames = [f for i, f in enumerate(frames_of(M, packets)) if i not in drops]
    folder = tmp_path_factory.mktemp("drops") / "s"
    synth_archive(folder, M, frames)
    assert_same(decode_archive(M, folder)["hk_rover"], independent_hk(frames))


def test_export_formats_carry_the_same_values_and_units(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    packets, _ = synth_packets(M, 50, events_every=10, seed=5)
    frames = frames_of(M, packets)
    synth_archive(tmp_path / "s", M, frames)
    tables = decode_archive(M, tmp_path / "s")
    rows = independent_hk(frames)
    write_tables(tables, tmp_path / "pq", "parquet")
    t = pq.read_table(tmp_path / "pq" / "hk_rover.parquet")
    assert t.num_rows == 50
    assert t.column("x_m").to_pylist() == pytest.approx([r["x_m"] for r in rows])
    assert t.schema.field("x_m").metadata == {b"unit": b"m"}
    assert [str(v) for v in t.column("mode").to_pylist()] == [r["mode"] for r in rows]
    write_tables(tables, tmp_path / "csv", "csv")
    with open(tmp_path / "csv" / "hk_rover.csv") as f:
        reader = csv.DictReader(f)
        got = list(reader)
    assert "x_m [m]" in got[0] and "mode" in got[0]
    assert [float(g["x_m [m]"]) for g in got] == pytest.approx([r["x_m"] for r in rows])
    assert [g["mode"] for g in got] == [r["mode"] for r in rows]
    write_tables(tables, tmp_path / "jl", "jsonl")
    lines = (tmp_path / "jl" / "hk_rover.jsonl").read_text().splitlines()
    assert [json.loads(x)["boot_count"] for x in lines] == [r["boot_count"] for r in rows]
    assert json.loads((tmp_path / "jl" / "units.json").read_text())["hk_rover"]["battery_v"] == "V"
    ev = (tmp_path / "jl" / "events.jsonl").read_text().splitlines()
    assert len(ev) == 5 and json.loads(ev[0])["event"] == "BOOT"


# --- traverse and parameter plots --------------------------------------------------------------


def _hk_packet(b: Any, **over: float) -> bytes:
    vals = []
    for p in M.hk_packets[1].parameters:
        v = over.get(p.name, 0)
        poly = p.calibration
        vals.append(int(round(v / poly[1])) if poly else int(v))
    return bytes(b.build(3, 25, struct.pack(M.hk_packets[1].struct_format, 1, *vals)))


def _event(b: Any, name: str, *args: int) -> bytes:
    ev = M.events_by_name[name]
    sub = {"info": 1, "low": 2, "medium": 3, "high": 4}[ev.severity]
    fmt = ">H" + "".join(STRUCT_CODES[a.type] for a in ev.args)
    return bytes(b.pack(5, sub, fmt, ev.id, *args))


def traverse_frames() -> list[bytes]:
    """Two boots: 30 samples east, a wheel fault at x=0.5; then 20 samples north with a hazard."""
    t = [0]
    b = TmPacketBuilder(apid=M.tm_apid, clock=lambda: (t[0], 0))
    pk = []
    for i in range(30):
        t[0] += 1
        pk.append(_hk_packet(b, x_m=i * 0.05, y_m=0.0, boot_count=1, mode=3, battery_pct=80))
        if i == 10:
            pk.append(_event(b, "WHEEL_FAULT", 2, 2))
    for i in range(20):
        t[0] += 1
        pk.append(_hk_packet(b, x_m=0.0, y_m=i * 0.1, boot_count=2, mode=2, battery_pct=79))
        if i == 15:
            pk.append(_event(b, "HAZARD_OBSTACLE", 300, 200))
    return frames_of(M, pk)


def test_traverse_plot_has_one_track_per_boot_and_fault_markers(tmp_path: Path) -> None:
    synth_archive(tmp_path / "s", M, traverse_frames())
    tables = decode_archive(M, tmp_path / "s")
    hk, events = tables["hk_rover"], tables["events"]
    assert [len(x) for x, _ in traverse_tracks(hk)] == [30, 20]
    pos = event_positions(hk, events)
    assert pos["WHEEL_FAULT"] == [pytest.approx((0.5, 0.0))]
    assert pos["HAZARD_OBSTACLE"] == [pytest.approx((0.0, 1.5))]
    fig = plot_traverse(hk, events)
    lines = {ln.get_gid(): ln for ln in fig.axes[0].get_lines()}
    assert len(np.asarray(lines["track-1"].get_xdata())) == 30 and len(np.asarray(lines["track-2"].get_ydata())) == 20
    assert list(np.asarray(lines["track-2"].get_ydata()))[-1] == pytest.approx(1.9)
    assert len(np.asarray(lines["event-WHEEL_FAULT"].get_xdata())) == 1
    out = save_png(fig, tmp_path / "traverse.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig2 = plot_parameters(hk, ["battery_pct", "mode"])
    assert [len(np.asarray(ln.get_xdata())) for ax in fig2.axes for ln in ax.get_lines()] == [50, 50]
    assert save_png(fig2, tmp_path / "p.png").stat().st_size > 1000


def test_plot_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hil.cli import main

    synth_archive(tmp_path / "s", M, traverse_frames())
    assert main(["gs", "plot", str(tmp_path / "s"), "-p", "warp_factor", "--out", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err == "farside: error: plot: no telemetry named 'warp_factor' in hk_rover\n"
    assert main(["gs", "plot", str(tmp_path / "s"), "--traverse", "--out", str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t.png").exists()


def test_parquet_without_pyarrow_is_one_line_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pip install -e .` leaves pyarrow out (it is the `parquet` extra): the README's Parquet
    export then names the extra in one line, and writes no folder (it raised an ImportError
    traceback after making it)."""
    import sys

    from hil.cli import main

    synth_archive(tmp_path / "s", M, traverse_frames())
    for name in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, name, None)  # `import pyarrow...` now raises ImportError
    out = tmp_path / "tables"
    assert main(["gs", "export", str(tmp_path / "s"), "--format", "parquet", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "farside: error: --format parquet needs pyarrow: pip install 'farside[parquet]'\n"
    assert not out.exists()
    assert main(["gs", "export", str(tmp_path / "s"), "--format", "csv", "--out", str(out)]) == 0  # CSV needs none
    assert (out / "hk_rover.csv").exists()


# --- watch ----------------------------------------------------------------------------------


def test_watch_renders_limits_events_link_mode_and_pose() -> None:
    state = GroundState(M)
    t = [100]
    b = TmPacketBuilder(apid=M.tm_apid, clock=lambda: (t[0], 0))
    for p in (_hk_packet(b, mode=3, x_m=1.25, y_m=-0.5, heading_deg=90, pitch_deg=21.5, roll_deg=16, battery_pct=80,
                         dict_hash=M.hash),
              _event(b, "HAZARD_TILT", 2150, 1600), _event(b, "MODE_CHANGE", 3, 1, 2)):
        # one frame per packet, counted on like the rover's (a repeated count is a duplicate)
        for f in frames_of(M, [p], clcw=lambda: 0x01040205, first_count=state.link.frames_ok):
            state.on_frame(f, 1000.0)
    screen = render_to_string(state, width=160, now=1002.0)
    assert "MODE DRIVE" in screen
    assert "x 1.250 m  y -0.500 m  heading 90.000 deg" in screen
    assert "21.500 deg  RED" in screen  # pitch beyond the red limit (20)
    assert "16.000 deg  YEL" in screen  # roll beyond yellow (15), inside red
    assert "tilt hazard: pitch 21.5 deg roll 16 deg" in screen  # raw cdeg shown in degrees
    assert "mode DRIVE -> SAFE (TILT)" in screen
    assert "V(R) 5" in screen and "FARM-B 1" in screen
    assert "frames" in screen and "ok 3" in screen
    assert "last contact" in screen and "2.0 s ago" in screen
    assert f"rover {M.hash:08x} ground {M.hash:08x}" in screen


# --- streamed export, archive roots and sessions ------------------------------------------------


def lossy_frames(seed: int) -> list[bytes]:
    packets, _ = synth_packets(M, 300, events_every=5, seed=seed)
    frames = [f for i, f in enumerate(frames_of(M, packets)) if i % 37 != 5]  # some lost
    frames.insert(40, frames[39])  # one repeated by the link
    return frames


@pytest.mark.parametrize("window", [1, 2, 5, 64, 100_000])
def test_streamed_decode_equals_the_whole_archive_decode_at_any_window(tmp_path: Path, window: int) -> None:
    from hil.gs.export import concat_tables, iter_decoded

    frames = lossy_frames(11)
    synth_archive(tmp_path / "s", M, frames)
    whole = decode_archive(M, tmp_path / "s")
    parts = list(iter_decoded(M, tmp_path / "s", [], window=window))
    assert len(parts) == -(-len(frames) // window)
    for name in ("hk_rover", "events"):
        got = concat_tables([p[name] for p in parts])
        assert list(got.columns) == list(whole[name].columns)
        for k, col in whole[name].columns.items():
            assert got.columns[k].tolist() == col.tolist(), (name, k)
    assert_same(concat_tables([p["hk_rover"] for p in parts]), independent_hk(frames))


def test_exported_parquet_equals_independent_decodes(tmp_path: Path) -> None:
    """The streamed export's files against the packet-by-packet decode, and against ccsdspy
    (the same HK packets decoded by its FixedLength layout with the same calibration)."""
    pq = pytest.importorskip("pyarrow.parquet")
    pytest.importorskip("ccsdspy")
    from hil.gs.export import export_archive
    from tests.bench.bench_export import ccsdspy_worker, compare

    packets, _ = synth_packets(M, 500, events_every=9, seed=4)
    frames = frames_of(M, packets)
    synth_archive(tmp_path / "s", M, frames)
    done = export_archive(M, tmp_path / "s", tmp_path / "pq", "parquet", window=16)
    assert done.rows["hk_rover"] == 500 and done.rows["events"] == len(range(0, 500, 9))
    t = pq.read_table(tmp_path / "pq" / "hk_rover.parquet")
    assert t.num_rows == 500 and pq.ParquetFile(tmp_path / "pq" / "hk_rover.parquet").num_row_groups > 1
    rows = independent_hk(frames)
    for name in ("packet_time_s", "x_m", "battery_v", "boot_count"):
        assert np.allclose(t.column(name).to_numpy(), [r[name] for r in rows], rtol=1e-12, atol=0), name
    assert [str(v) for v in t.column("mode").to_pylist()] == [r["mode"] for r in rows]
    raw = tmp_path / "hk.packets"
    raw.write_bytes(b"".join(p for p in packets if p[7:9] == b"\x03\x19"))
    ccsdspy_worker(raw, tmp_path / "ccsdspy.parquet")
    assert compare(tmp_path / "pq" / "hk_rover.parquet", tmp_path / "ccsdspy.parquet") == len(NAMES) + 1


def test_event_arguments_are_columns_one_per_argument_name(tmp_path: Path) -> None:
    synth_archive(tmp_path / "s", M, traverse_frames())
    ev = decode_archive(M, tmp_path / "s")["events"]
    assert "args" not in ev.columns
    fault, hazard = M.events_by_name["WHEEL_FAULT"], M.events_by_name["HAZARD_OBSTACLE"]
    names = {a.name for a in fault.args} | {a.name for a in hazard.args}
    assert {k for k in ev.columns if k.startswith("arg_")} == {f"arg_{n}" for n in names}
    rows = {e: i for i, e in enumerate(ev.columns["event"].tolist())}
    for a, v in zip(hazard.args, (300, 200), strict=True):
        assert ev.columns[f"arg_{a.name}"][rows["HAZARD_OBSTACLE"]] == v
    for a in fault.args:
        if a.name not in {b.name for b in hazard.args}:
            assert ev.columns[f"arg_{a.name}"][rows["HAZARD_OBSTACLE"]] is None  # not its argument
    write_tables({"events": ev}, tmp_path / "csv", "csv")
    with open(tmp_path / "csv" / "events.csv") as f:
        got = list(csv.DictReader(f))
    assert got[1]["event"] == "HAZARD_OBSTACLE" and got[1][f"arg_{hazard.args[0].name}"] == "300"


def test_verification_reports_name_the_command_they_report_on() -> None:
    from hil.gs.export import Table, name_commands

    tc = Table("tc_sent", {
        "ground_time": np.array([10.0, 20.0, 30.0]), "command": np.array(["PING", "DRIVE_DISTANCE", "PING"], dtype=object),
        "pus_seq": np.array([5, 6, 5]), "args": np.array(["", "distance_m=2.0", ""], dtype=object),
    })
    pid = 0x1800 | M.tc_apid
    ver = Table("verification", {
        "ground_time": np.array([11.0, 21.0, 25.0, 31.0, 40.0]),
        "stage": np.array(["accepted", "accepted", "completed", "completed", "accepted"], dtype=object),
        "packet_id": np.array([pid, pid, pid, pid, pid]),
        "seq_control": np.array([0xC000 | 5, 0xC000 | 6, 0xC000 | 6, 0xC000 | 5, 0xC000 | 99]),
    })
    named = name_commands(ver, tc, M)
    assert named.columns["command"].tolist() == ["PING", "DRIVE_DISTANCE", "DRIVE_DISTANCE", "PING", ""]
    assert named.columns["command_args"].tolist()[1] == "distance_m=2.0"


def two_session_root(root: Path) -> tuple[list[bytes], list[bytes]]:
    a = frames_of(M, synth_packets(M, 120, seed=1)[0])
    b = frames_of(M, synth_packets(M, 80, seed=2)[0])
    synth_archive(root / "session-20261201T100000Z", M, b, t0=1.8e9)  # named first, recorded later
    synth_archive(root / "session-20261202T090000Z", M, a, t0=1.7e9)
    return a, b


def test_archive_list_shows_each_session_with_times_records_packets_and_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hil.cli import main

    a, b = two_session_root(tmp_path / "archive")
    assert main(["gs", "archive", "list", str(tmp_path / "archive")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["session", "start", "UTC"]
    first, second = lines[1].split(), lines[2].split()
    assert first[0] == "session-20261202T090000Z"  # oldest first, by its records' times
    assert first[1:3] == ["2023-11-14", "22:13:20"] and first[5] == str(len(a)) and first[6] == "120"
    assert second[0] == "session-20261201T100000Z" and second[5] == str(len(b)) and second[6] == "80"
    assert float(first[7]) > 10 and first[8] == "kB" and lines[-1] == f"2 sessions in {tmp_path / 'archive'}"


def test_export_takes_an_archive_root_or_one_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hil.cli import main

    two_session_root(tmp_path / "archive")
    assert main(["gs", "export", str(tmp_path / "archive"), "--out", str(tmp_path / "all")]) == 0
    assert "hk_rover: 200 rows" in capsys.readouterr().out
    assert main(["gs", "export", str(tmp_path / "archive"), "--session", "session-20261201T100000Z",
                 "--out", str(tmp_path / "one")]) == 0
    assert "hk_rover: 80 rows" in capsys.readouterr().out
    with open(tmp_path / "all" / "hk_rover.csv") as f:
        times = [float(r["ground_time [s]"]) for r in csv.DictReader(f)]
    assert times == sorted(times)  # sessions in recorded order
    assert main(["gs", "export", str(tmp_path / "archive"), "--session", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("farside: error: no session 'nope' in ") and err.count("\n") == 1
    assert "session-20261201T100000Z" in err


@settings(max_examples=60, deadline=None)
@given(
    ints=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=40),
    raws=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=40),
    places=st.integers(1, 4),
    coarse=st.integers(0, 2**32 - 1),
)
def test_bulk_csv_text_is_each_value_exactly(ints: list[int], raws: list[int], places: int, coarse: int) -> None:
    from hil.gs.export import Table, csv_bytes

    n = min(len(ints), len(raws))
    t = Table("t", decimals={"eng": places, "time": 6}, enums={"mode": ["SAFE", "a,b", 'say "hi"']})
    t.columns["mode"] = np.arange(n, dtype=np.uint8) % 3
    t.columns["i32"] = np.array(ints[:n], dtype=np.int32)
    t.columns["u16"] = (np.array(ints[:n], dtype=np.int64) & 0xFFFF).astype(np.uint16)
    t.columns["eng"] = np.array(raws[:n], dtype=np.int64) * 10.0**-places  # as hk_table calibrates
    t.columns["time"] = coarse + (np.array(ints[:n], dtype=np.int64) & 0xFFFF) / 65536.0
    rows = list(csv.reader(csv_bytes(t, 0, n).decode().splitlines()))
    assert [r[0] for r in rows] == [["SAFE", "a,b", 'say "hi"'][i % 3] for i in range(n)]
    assert [int(r[1]) for r in rows] == ints[:n]
    assert [int(r[2]) for r in rows] == [v & 0xFFFF for v in ints[:n]]
    def decimal(raw: int) -> str:
        whole, frac = divmod(abs(raw), 10**places)
        return f"{'-' if raw < 0 else ''}{whole}.{frac:0{places}d}"

    assert [r[3] for r in rows] == [decimal(v) for v in raws[:n]]
    for r, v in zip(rows, t.columns["time"].tolist(), strict=True):
        assert r[4] == f"{v:.6f}"


def test_csv_written_chunk_by_chunk_is_the_whole_tables_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks laid out in turn in two scratch buffers, each squeezed partly there and partly in
    the thread that writes it, while the one before is written: the file holds every chunk
    once, in order."""
    from hil.gs import export

    frames = frames_of(M, synth_packets(M, 700, events_every=50, seed=5)[0])
    synth_archive(tmp_path / "s", M, frames)
    whole = decode_archive(M, tmp_path / "s")["hk_rover"]
    monkeypatch.setattr(export, "CSV_CHUNK_ROWS", 23)  # 700 rows over several windows: many chunks
    monkeypatch.setattr(export, "SQUEEZE_ROWS", 4)  # each chunk squeezed partly by either thread
    done = export.export_archive(M, tmp_path / "s", tmp_path / "out", "csv", window=64)
    assert done.rows["hk_rover"] == len(whole) == 700
    text = (tmp_path / "out" / "hk_rover.csv").read_bytes()
    header, body = text.split(b"\n", 1)
    assert header.startswith(b"packet_time_s [s],ground_time [s],")
    assert body == export.csv_bytes(whole, 0, len(whole))
    assert body.count(b"\n") == 700 and b"\0" not in body


def test_streamed_export_skips_a_corrupt_record_like_the_whole_decode(tmp_path: Path) -> None:
    import warnings

    from hil.gs.archive import ArchiveWarning
    from hil.gs.export import export_archive

    frames = frames_of(M, synth_packets(M, 300, events_every=4, seed=8)[0])
    synth_archive(tmp_path / "s", M, frames)
    part = tmp_path / "s" / "part-0001.fsa"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x40  # inside a frame record in the middle of the run
    part.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        whole = decode_archive(M, tmp_path / "s")
        done = export_archive(M, tmp_path / "s", tmp_path / "out", "csv", window=8)
    assert sum(issubclass(w.category, ArchiveWarning) for w in caught) == 2  # once per reading
    assert 0 < done.rows["hk_rover"] == len(whole["hk_rover"]) < 300
    with open(tmp_path / "out" / "hk_rover.csv") as f:
        got = [float(r["x_m [m]"]) for r in csv.DictReader(f)]
    assert got == pytest.approx(whole["hk_rover"].columns["x_m"].tolist(), abs=5e-4)


def test_plot_takes_one_session_of_an_archive_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hil.cli import main

    two_session_root(tmp_path / "archive")
    out = tmp_path / "p.png"
    assert main(["gs", "plot", str(tmp_path / "archive"), "--session", "session-20261201T100000Z",
                 "-p", "battery_pct", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert main(["gs", "plot", str(tmp_path / "archive" / "session-20261202T090000Z"), "-p", "battery_pct",
                 "--out", str(tmp_path / "q.png")]) == 0
    capsys.readouterr()
    assert main(["gs", "plot", str(tmp_path / "archive"), "--session", "x", "-p", "battery_pct",
                 "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("farside: error: no session 'x' in ")


def test_the_archive_reader_thread_stops_when_its_reader_does(tmp_path: Path) -> None:
    import threading

    from hil.gs.archive import iter_tm_blocks

    frames = frames_of(M, synth_packets(M, 400, seed=2)[0])
    synth_archive(tmp_path / "s", M, frames)
    blocks = iter_tm_blocks(tmp_path / "s", M.tm_frame_length, [], block_frames=3)
    t, f = next(blocks)
    assert f.tobytes() == b"".join(frames[:3]) and len(t) == 3
    blocks.close()  # the reader gives up early: the thread must end, not hang on its queue
    assert not any(th.name == "archive-reader" for th in threading.enumerate())
    got = list(iter_tm_blocks(tmp_path / "s", M.tm_frame_length, [], block_frames=7))
    assert b"".join(f.tobytes() for _, f in got) == b"".join(frames)
    assert [len(f) for _, f in got[:-1]] == [7] * (len(got) - 1)
