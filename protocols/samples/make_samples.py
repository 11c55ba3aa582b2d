"""Make the sample captures in this folder with the protocols builders.

    python -m protocols.samples.make_samples     # rewrites tm_stream.bin, tc_stream.bin, keys.json

tm_stream.bin: ASM-framed 256-octet TM frames (VC 0, CLCW in the OCF) carrying a boot event,
a mode change, two housekeeping reports, command verification, a ping reply and a parameter
report. tc_stream.bin: EB90-framed authenticated TC frames (SPI 1, key in keys.json, a demo
key that guards nothing): PING, MODE_SET DRIVE, DRIVE_DISTANCE, and a BC Unlock.
A test checks that the committed files equal what this script makes.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from protocols.clcw import Clcw
from protocols.cuc import Cuc
from protocols.dictionary import load_dictionary
from protocols.pus import build_tc_packet, build_tm_packet
from protocols.sdls import SecuritySender
from protocols.stream import frame_tc, frame_tm
from protocols.tc_frame import build_ad_frame, build_bc_frame, unlock
from protocols.tm_frame import TmMultiplexer

HERE = Path(__file__).resolve().parent
DEMO_KEY = hashlib.sha256(b"farside demo key: guards nothing").digest()


def _hk(uptime_s: int, x_mm: int, mode: int) -> bytes:
    d = load_dictionary()
    hk = d.housekeeping[1]
    raw = {p.name: 0 for p in hk.parameters}
    raw.update(
        uptime_s=uptime_s, rover_time_s=1000 + uptime_s, mode=mode, boot_count=3, reset_cause=0,
        dict_hash=d.short_hash(), x_m=x_mm, y_m=-250, heading_deg=9000, speed_mph=1500 if mode == 3 else 0,
        odometer_m=abs(x_mm), battery_pct=87, battery_v=28400, solar_w=1120, temp_motor_c=-1250,
        temp_board_c=1800, tc_frames_ok=4, clcw=0x01040004, farm_vr=4, cmd_accepted=4, cmd_completed=3,
        free_heap=131072, loop_worst_us=4200,
        **{f"wheel{i}_current_a": 850 + 10 * i for i in range(1, 7)},
        **{f"wheel{i}_speed_mph": 1500 if mode == 3 else 0 for i in range(1, 7)},
    )
    return struct.pack(hk.struct_format, 1, *(raw[p.name] for p in hk.parameters))


def tm_stream() -> bytes:
    d = load_dictionary()
    m = d.mission
    apid = m["tm_apid"]
    seq = 0

    def tm(service: int, subservice: int, data: bytes, t: float) -> bytes:
        nonlocal seq
        seq += 1
        return build_tm_packet(apid, seq, service, subservice, data, Cuc.from_seconds(1000 + t), msg_counter=seq)

    ping = build_tc_packet(m["tc_apid"], 1, 17, 1)
    drive = build_tc_packet(m["tc_apid"], 3, 200, 2)
    packets = [
        tm(5, 1, struct.pack(">HIHBI", 1, 0x00010000, 3, 0, d.short_hash()), 0.0),
        tm(5, 1, struct.pack(">HBBB", 2, 0, 2, 0), 0.5),
        tm(3, 25, _hk(1, 0, 2), 1.0),
        tm(1, 1, ping[:4], 2.0),
        tm(17, 2, b"", 2.0),
        tm(1, 7, ping[:4], 2.0),
        tm(5, 1, struct.pack(">HBBB", 2, 2, 3, 1), 3.0),
        tm(1, 1, drive[:4], 3.0),
        tm(5, 1, struct.pack(">HBi", 6, 1, 2000), 3.0),
        tm(3, 25, _hk(5, 1500, 3), 5.25),
        tm(20, 2, struct.pack(">Hf", 3, 20.0), 6.0),
        tm(5, 4, struct.pack(">HBB", 3, 5, 2), 7.0),
        tm(1, 8, drive[:4] + struct.pack(">H", 11), 7.0),
    ]
    clcw = Clcw(vcid=m["tc_vcid"], report_value=4).to_int()
    mux = TmMultiplexer(m["scid"], m["tm_vcid"], m["tm_frame_length"], clcw=clcw)
    frames: list[bytes] = []
    for p in packets:
        mux.push(p)
        frames += mux.frames()
    frames += mux.flush()
    frames.append(mux.idle_frame())
    return b"".join(frame_tm(f) for f in frames)


def tc_stream() -> bytes:
    d = load_dictionary()
    m = d.mission
    sender = SecuritySender(DEMO_KEY, spi=m["auth"]["default_spi"])
    out = bytearray()
    commands: list[tuple[str, dict[str, object]]] = [
        ("PING", {}),
        ("MODE_SET", {"mode": "DRIVE"}),
        ("DRIVE_DISTANCE", {"distance_m": 2.0, "speed_mph": 150}),
    ]
    for ns, (name, args) in enumerate(commands):
        svc, sub, data = d.encode_command(name, args)
        packet = build_tc_packet(m["tc_apid"], ns + 1, svc, sub, data)
        out += frame_tc(build_ad_frame(m["scid"], m["tc_vcid"], ns, packet, security=sender))
    out += frame_tc(build_bc_frame(m["scid"], m["tc_vcid"], unlock(), security=sender))
    return bytes(out)


def keys_json() -> bytes:
    return (json.dumps({"keys": {"1": DEMO_KEY.hex()}}, indent=1) + "\n").encode()


def build_samples() -> dict[str, bytes]:
    """File name -> contents, for every sample."""
    return {"tm_stream.bin": tm_stream(), "tc_stream.bin": tc_stream(), "keys.json": keys_json()}


def main() -> None:
    for name, data in build_samples().items():
        (HERE / name).write_bytes(data)
        print(f"{name}: {len(data)} octets")


if __name__ == "__main__":
    main()
