"""Export of a million HK packets against ccsdspy, each a whole process (figures, not a test).

    python -m tests.bench.bench_export [--packets 1000000] [--cache DIR] [--json FILE]

The archive: N HK packets (and an event every 1000) built by the rover's own packet builder
and TM framer (hil.gs.synth). Timed, each as its own process (wall, CPU, and peak RSS from
`os.wait4`, as /usr/bin/time reports them):

- `farside gs export ARCHIVE --format parquet` and `--format csv`;
- ccsdspy (`FixedLength` with the dictionary's HK layout, `PolyConverter` for the same
  calibration) decoding the same HK packets from a packet file, and writing the same Parquet
  (the same columns, calibrated, with pyarrow); and the same with the decode alone.

Then the two Parquet files are compared column by column: the export must equal ccsdspy's
independent decode. Goals (issue 16): farside's Parquet throughput >= 1.5x ccsdspy's
decode-plus-write, its peak RSS <= half of ccsdspy's; CSV >= 300k packets/s.

The CSV export writes about 477 MB: the write alone (the same octets from memory to a new file
beside it, in the export's blocks, as its own process) is timed too, to tell the part the
machine's page cache and disk take from the part the export's own work takes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.bench.report import add_json_option, write_json

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    """One whole process: wall and CPU seconds, peak resident set (MiB)."""

    wall_s: float
    cpu_s: float
    rss_mib: float

    def rate(self, n: int) -> float:
        return n / self.wall_s


def run_process(cmd: list[str]) -> Run:
    """Run `cmd` to completion; its own rusage (not the sum of all children)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"bench_export: {' '.join(cmd)} failed with exit code {proc.returncode}")
    return Run(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0)


def prepare(folder: Path, n: int) -> tuple[Path, Path]:
    """The archive (frames) and the HK packets alone end to end (ccsdspy's input), made in a
    process of its own: Linux carries a process's peak RSS over fork and exec into its children's
    `ru_maxrss`, so a bench that had built the archive itself (about 485 MiB) would lend that
    peak to every export it then timed."""
    arch, raw = _archive_paths(folder, n)
    if not (arch.exists() and raw.exists()):
        subprocess.run([sys.executable, "-m", "tests.bench.bench_export", "--prepare-worker", str(folder), str(n)],
                       cwd=ROOT, check=True)
    return arch, raw


def _archive_paths(folder: Path, n: int) -> tuple[Path, Path]:
    return folder / f"hk-{n}", folder / f"hk-{n}.packets"


def prepare_worker(folder: Path, n: int) -> None:
    from hil.gs.mission import Mission
    from hil.gs.synth import bulk_hk_packets, frames_of, synth_archive

    arch, raw = _archive_paths(folder, n)
    shutil.rmtree(arch, ignore_errors=True)
    m = Mission.load()
    packets = bulk_hk_packets(m, n, events_every=1000)
    hk_len = m.hk_packet_length(1)
    with open(raw, "wb") as f:
        f.write(b"".join(p for p in packets if len(p) == hk_len and p[7:9] == b"\x03\x19"))
    frames = frames_of(m, packets)
    del packets
    synth_archive(arch, m, frames)


# --- the ccsdspy side, run as its own process --------------------------------------------------

CCSDSPY_TYPES = {"u": "uint", "i": "int", "f": "float"}


def ccsdspy_worker(raw: Path, out: Path | None) -> None:
    """Decode the HK packets with ccsdspy and the dictionary's calibration; write Parquet."""
    import logging

    logging.getLogger("ccsdspy").setLevel(logging.WARNING)
    import ccsdspy
    from ccsdspy.converters import PolyConverter

    from hil.gs.mission import Mission

    m = Mission.load()
    params = m.hk_packets[1].parameters
    fields = [
        ccsdspy.PacketField(name="_pus", data_type="uint", bit_length=8),
        ccsdspy.PacketField(name="_service", data_type="uint", bit_length=8),
        ccsdspy.PacketField(name="_subservice", data_type="uint", bit_length=8),
        ccsdspy.PacketField(name="_counter", data_type="uint", bit_length=16),
        ccsdspy.PacketField(name="_dest", data_type="uint", bit_length=16),
        ccsdspy.PacketField(name="_coarse", data_type="uint", bit_length=32),
        ccsdspy.PacketField(name="_fine", data_type="uint", bit_length=16),
        ccsdspy.PacketField(name="_sid", data_type="uint", bit_length=16),
    ]
    for p in params:
        fields.append(ccsdspy.PacketField(name=p.name, data_type=CCSDSPY_TYPES[p.type[0]], bit_length=int(p.type[1:])))
    fields.append(ccsdspy.PacketField(name="_crc", data_type="uint", bit_length=16))
    pkt = ccsdspy.FixedLength(fields)
    for p in params:
        if p.calibration:
            pkt.add_converted_field(p.name, p.name + "_eng", PolyConverter(list(reversed(p.calibration))))
    cols: dict[str, Any] = pkt.load(str(raw))
    if out is None:
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    table: dict[str, Any] = {
        "packet_time_s": cols["_coarse"].astype(np.float64) + cols["_fine"].astype(np.float64) / 65536.0
    }
    for p in params:
        col = np.asarray(cols[p.name + "_eng"] if p.calibration else cols[p.name])
        table[p.name] = col.astype(col.dtype.newbyteorder("="), copy=False)  # pyarrow takes native order only
    # the export's writer settings: snappy, dictionary encoding for the enum columns only
    pq.write_table(pa.table(table), out, use_dictionary=[p.name for p in params if p.enum is not None],
                   compression="snappy")


WRITE_BLOCK = 4 << 20


def write_worker(src: Path, dst: Path) -> None:
    """Write `src`'s octets (read first, untimed) to `dst` in blocks; print the write's wall
    and system CPU seconds."""
    data = memoryview(src.read_bytes())
    dst.unlink(missing_ok=True)
    t0, c0 = time.perf_counter(), os.times()
    with open(dst, "wb") as f:
        for i in range(0, len(data), WRITE_BLOCK):
            f.write(data[i : i + WRITE_BLOCK])
    wall, c1 = time.perf_counter() - t0, os.times()
    print(f"{wall} {c1.system - c0.system} {c1.user - c0.user}")


def write_alone(src: Path, dst: Path) -> Run:
    """The write alone of the CSV export's octets, measured inside its own process."""
    cmd = [sys.executable, "-m", "tests.bench.bench_export", "--write-worker", str(src), str(dst)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    dst.unlink(missing_ok=True)
    return Run(float(out[0]), float(out[1]) + float(out[2]), 0.0)


def compare(ours: Path, theirs: Path) -> int:
    """Columns both files have must be equal (calibrated floats to the last bit of float32
    input, enums by their codes). Returns the number of columns compared."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    a, b = pq.read_table(ours), pq.read_table(theirs)
    if a.num_rows != b.num_rows:
        sys.exit(f"bench_export: farside exported {a.num_rows} HK rows, ccsdspy decoded {b.num_rows}")
    compared = 0
    for name in b.column_names:
        if name not in a.column_names:
            continue
        col = a.column(name).combine_chunks()
        x = (col.indices if pa.types.is_dictionary(col.type) else col).to_numpy(zero_copy_only=False)
        y = b.column(name).to_numpy()
        if not np.allclose(x.astype(np.float64), y.astype(np.float64), rtol=1e-12, atol=0.0, equal_nan=True):
            bad = int(np.flatnonzero(~np.isclose(x.astype(np.float64), y.astype(np.float64), rtol=1e-12))[0])
            sys.exit(f"bench_export: column {name} differs at row {bad}: farside {x[bad]!r}, ccsdspy {y[bad]!r}")
        compared += 1
    return compared


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--cache", type=Path, help="keep the generated archive in this folder between runs")
    ap.add_argument("--repeat", type=int, default=3, help="runs per process; the fastest is kept")
    ap.add_argument("--ccsdspy-worker", nargs="+", metavar="PATH", help=argparse.SUPPRESS)
    ap.add_argument("--write-worker", nargs=2, type=Path, metavar="PATH", help=argparse.SUPPRESS)
    ap.add_argument("--prepare-worker", nargs=2, metavar=("FOLDER", "N"), help=argparse.SUPPRESS)
    add_json_option(ap)
    args = ap.parse_args()
    if args.prepare_worker:
        prepare_worker(Path(args.prepare_worker[0]), int(args.prepare_worker[1]))
        return
    if args.write_worker:
        write_worker(*args.write_worker)
        return
    if args.ccsdspy_worker:
        ccsdspy_worker(Path(args.ccsdspy_worker[0]), Path(args.ccsdspy_worker[1]) if len(args.ccsdspy_worker) > 1 else None)
        return
    n = args.packets
    with tempfile.TemporaryDirectory(prefix="farside-bench-export-") as tmp_s:
        tmp = Path(tmp_s)
        folder = args.cache or tmp
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        arch, raw = prepare(folder, n)
        size = sum(p.stat().st_size for p in arch.glob("*.fsa"))
        print(f"archive: {n:,} HK packets (+ an event every 1000), {size / 1e6:.1f} MB "
              f"(ready in {time.perf_counter() - t0:.1f} s); ccsdspy's input: {raw.stat().st_size / 1e6:.1f} MB of HK packets")
        py = sys.executable
        farside = [py, "-m", "hil.cli", "gs", "export", str(arch), "--out"]
        worker = [py, "-m", "tests.bench.bench_export", "--ccsdspy-worker", str(raw)]
        # warm the page cache and the bytecode caches first (untimed)
        run_process([*farside, str(tmp / "warm"), "--format", "parquet"])
        runs: dict[str, Run] = {}
        for _ in range(args.repeat):  # interleaved, so that a burst of other load hits both sides
            for name, cmd in (
                ("farside_parquet", [*farside, str(tmp / "pq"), "--format", "parquet"]),
                ("ccsdspy_parquet", [*worker, str(tmp / "ccsdspy.parquet")]),
                ("farside_csv", [*farside, str(tmp / "csv"), "--format", "csv"]),
                ("ccsdspy_decode", worker),
            ):
                r = run_process(cmd)
                if name not in runs or r.wall_s < runs[name].wall_s:
                    runs[name] = r
            w = write_alone(tmp / "csv" / "hk_rover.csv", tmp / "write-alone.csv")
            if "csv_write_alone" not in runs or w.wall_s < runs["csv_write_alone"].wall_s:
                runs["csv_write_alone"] = w
        csv_octets = (tmp / "csv" / "hk_rover.csv").stat().st_size
        compared = compare(tmp / "pq" / "hk_rover.parquet", tmp / "ccsdspy.parquet")
    print(f"\nfastest of {args.repeat} runs each, interleaved")
    print(f"{'process':18} {'wall s':>7} {'CPU s':>7} {'peak RSS MiB':>13} {'packets/s':>11}")
    for name, r in runs.items():
        if name != "csv_write_alone":
            print(f"{name:18} {r.wall_s:7.2f} {r.cpu_s:7.2f} {r.rss_mib:13.0f} {r.rate(n):11,.0f}")
    fp, cp, fc, cd = runs["farside_parquet"], runs["ccsdspy_parquet"], runs["farside_csv"], runs["ccsdspy_decode"]
    wa = runs.pop("csv_write_alone")
    speedup = cp.wall_s / fp.wall_s
    rss_ratio = fp.rss_mib / cp.rss_mib
    print(f"\nParquet throughput: {speedup:.2f}x ccsdspy's decode + write (goal >= 1.5x); "
          f"CPU {cp.cpu_s / fp.cpu_s:.2f}x")
    print(f"Parquet peak RSS: {rss_ratio:.2f} of ccsdspy's (goal <= 0.5)")
    print(f"CSV: {fc.rate(n):,.0f} packets/s (goal >= 300,000), {fc.wall_s / cd.wall_s:.2f}x ccsdspy's decode alone")
    print(f"CSV write alone: {csv_octets / 1e6:.0f} MB in {wa.wall_s:.2f} s wall ({wa.cpu_s:.2f} s CPU, "
          f"{csv_octets / 1e6 / wa.wall_s:,.0f} MB/s) of the export's {fc.wall_s:.2f} s")
    print(f"equality: {compared} HK columns of the Parquet export equal ccsdspy's decode, row for row")
    figures: dict[str, Any] = {"packets": n, "archive_mb": size / 1e6, "columns_equal": compared}
    for name, r in runs.items():
        figures.update({f"{name}_wall_s": r.wall_s, f"{name}_cpu_s": r.cpu_s, f"{name}_rss_mib": r.rss_mib})
    figures.update(parquet_speedup_vs_ccsdspy=speedup, parquet_rss_vs_ccsdspy=rss_ratio,
                   csv_packets_per_s=fc.rate(n), parquet_packets_per_s=fp.rate(n), csv_mb=csv_octets / 1e6,
                   csv_write_alone_wall_s=wa.wall_s, csv_write_alone_cpu_s=wa.cpu_s)
    write_json(args.json, figures, "export")


if __name__ == "__main__":
    main()
