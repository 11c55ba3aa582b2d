"""`farside decode`: every layer of samples and hex; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hil.cli import main
from protocols.samples.make_samples import build_samples
from protocols.stream import frame_tm
from protocols.tm_frame import TmMultiplexer

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "protocols" / "samples"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["decode", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["tm_stream.bin", "tc_stream.bin", "keys.json"])
def test_committed_samples_equal_what_the_builders_make(name: str) -> None:
    assert (SAMPLES / name).read_bytes() == build_samples()[name], (
        f"protocols/samples/{name} is stale: run python -m protocols.samples.make_samples"
    )


def test_decode_tm_sample_names_every_packet(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(SAMPLES / "tm_stream.bin"))
    assert code == 0 and err == ""
    assert "event BOOT (id 1) [info]: boot 3:" in out
    assert "mode = DRIVE  (raw 3)" in out
    assert "x_m = 1.5 m  (raw 1500)" in out
    assert "verification COMPLETION_FAILED: TC apid 1 seq 3 completion failed: HAZARD" in out
    assert "event WHEEL_FAULT (id 3) [high]: wheel 5 failed: STALL" in out
    assert "CLCW 01040004: VC 1 N(R) 4" in out
    assert "4 frames ok" in out and "13 packets, 0 gaps" in out
    assert "PUS TM 5/1 counter 2 time 2019-01-03T02:42:40.500Z (mission epoch + 1000.500 s) CRC 2a07 ok" in out
    assert "PUS TM 3/25 counter 3 time 2019-01-03T02:42:41.000Z (mission epoch + 1001.000 s)" in out
    assert "TM frame at octet 264: SCID 171 VC 0 frame #1 (MC #1), first packet at data octet 12" in out
    assert "parameter tilt_limit_deg (id 3)\n    tilt_limit_deg = 20 deg\n" in out


def test_decode_tc_sample_json_with_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(SAMPLES / "tc_stream.bin"), "--json", "--keys", str(SAMPLES / "keys.json"))
    assert code == 0
    result = json.loads(out)
    assert result["input"] == "tc_stream"
    names = [layer["name"] for item in result["items"] for layer in item["layers"]
             if layer["layer"] in ("command", "control_command")]
    assert names == ["PING", "MODE_SET", "DRIVE_DISTANCE", "UNLOCK"]
    auths = [layer["auth"] for item in result["items"] for layer in item["layers"] if layer["layer"] == "security"]
    assert auths == ["OK"] * 4
    drive = next(layer for item in result["items"] for layer in item["layers"] if layer.get("name") == "DRIVE_DISTANCE")
    assert {v["name"]: (v["value"], v["unit"]) for v in drive["values"]} == {
        "distance_m": (2.0, "m"), "speed_mph": (150.0, "m/h"),
    }


def test_wrong_key_shows_bad_mac(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {"1": "11" * 32}}))
    code, out, _ = run(capsys, str(SAMPLES / "tc_stream.bin"), "--keys", str(keys))
    assert code == 0 and out.count("auth BAD_MAC") == 4


def test_golden_hex_in_each_layer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "20ab0413001801c01600062f11010000ab62cf39")
    assert code == 0
    assert out.splitlines() == [
        "TC frame at octet 0: type BD (expedited) SCID 171 VC 1 N(S) 0, 20 octets, FECF cf39 ok",
        "  space packet: TC APID 1 seq 22, 13 octets",
        "  PUS TC 17/1 ack 0xf (all reports) source 0 CRC ab62 ok",
        "  command PING",
    ]
    code, out, _ = run(capsys, "0x0820c001 0010200319000000000000000000000102f5c6", "--json")
    layers = json.loads(out)["items"][0]["layers"]
    assert [layer["layer"] for layer in layers] == ["space_packet", "pus_tm", "unknown"]


def test_single_tm_frame_and_garbage_before_a_stream(capsys: pytest.CaptureFixture[str]) -> None:
    frame = TmMultiplexer(171).idle_frame()
    code, out, _ = run(capsys, frame.hex(), "--direction", "tm")
    assert code == 0 and "frame #0 (MC #0), idle frame (no packets)" in out
    code, out, _ = run(capsys, ("00ff" * 5) + frame_tm(frame).hex())
    assert code == 0 and "TM stream: 1 frame ok (1 idle), 0 bad, 10 octets of garbage;" in out


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("zz12", r"neither a file nor hex: 'z' at hex digit 0"),
        ("abc", r"odd number of digits"),
        ("20ab0413001801c01600062f11010000ab62cf38", r"TC frame FECF at octet 18 is cf38, expected cf39"),
        ("1801c01600062f11010000ab63", r"packet error control at octet 11 is ab63, expected ab62"),
        ("1801c01600072f11010000ab63", r"13 octets fit no layout: not a space packet \(length field, octets 4-5, says 14"),
        ("1acffc1d0000", r"no valid TM frame in 6 octets"),
        ("0820", r"too short"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], arg: str, message: str) -> None:
    code, out, err = run(capsys, arg)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("farside: error: ")
    import re

    assert re.search(message, err), err


def test_stream_of_only_bad_frames_names_the_first_bad_offset(capsys: pytest.CaptureFixture[str]) -> None:
    frame = bytearray(frame_tm(TmMultiplexer(171).idle_frame()))
    frame[50] ^= 1
    code, _, err = run(capsys, "0000" + frame.hex())
    assert code == 2 and "first bad frame at octet 2 (bad crc frame)" in err


def test_missing_key_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "00", "--keys", str(tmp_path / "nope.json"))
    assert code == 2 and err.count("\n") == 1 and "cannot read key file" in err


def test_installed_command_exits_2_without_a_traceback() -> None:
    exe = Path(sys.executable).parent / "farside"
    if not exe.exists():
        pytest.skip("farside console script not installed in this environment")
    proc = subprocess.run([str(exe), "decode", "1801c01600062f11010000ab63"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("farside: error: ") and "Traceback" not in proc.stderr
    ok = subprocess.run([str(exe), "decode", str(SAMPLES / "tm_stream.bin")], capture_output=True, text=True)
    assert ok.returncode == 0 and "HK_ROVER" in ok.stdout
    piped = subprocess.run([str(exe), "decode", "-"], input=(SAMPLES / "tc_stream.bin").read_bytes(),
                           capture_output=True)
    assert piped.returncode == 0 and b"command DRIVE_DISTANCE" in piped.stdout


def test_decode_a_cltu_with_a_corrected_bit(capsys: pytest.CaptureFixture[str]) -> None:
    from protocols.cltu import encode_cltu
    from protocols.pus import build_tc_packet
    from protocols.tc_frame import build_tc_frame

    cltu = bytearray(encode_cltu(build_tc_frame(171, 1, 0, build_tc_packet(1, 22, 17, 1), bypass=True)))
    cltu[5] ^= 0x04
    code, out, _ = run(capsys, cltu.hex())
    assert code == 0
    assert "command PING" in out and "(1 corrected), 1 frame ok" in out


def test_a_bad_packet_inside_a_good_stream_is_reported_in_place(capsys: pytest.CaptureFixture[str]) -> None:
    from protocols.pus import build_tm_packet

    good = build_tm_packet(32, 1, 17, 2)
    bad = bytearray(build_tm_packet(32, 2, 17, 2))
    bad[-1] ^= 0xFF
    mux = TmMultiplexer(171)
    for p in (good, bytes(bad), good):
        mux.push(p)
    stream = b"".join(frame_tm(f) for f in mux.flush())
    code, out, _ = run(capsys, stream.hex())
    assert code == 0
    assert out.count("ping PING_REPLY") == 2
    assert "error: TM packet: packet error control at octet 19" in out


def test_a_duplicated_frame_is_counted_once_in_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    from protocols.pus import build_tm_packet

    mux = TmMultiplexer(171)
    for i in range(6):
        mux.push(build_tm_packet(32, i, 17, 2))
    frames = mux.flush()
    stream = b"".join(frame_tm(f) for f in [frames[0], frames[0], *frames[1:]])
    code, out, _ = run(capsys, stream.hex())
    assert code == 0 and out.count("ping PING_REPLY") == 6
    assert "6 packets, 0 gaps (0 frames lost), 0 packets dropped, 1 duplicate frame discarded" in out
    code, out, _ = run(capsys, stream.hex(), "--json")
    demux = json.loads(out)["counters"]["demux"]
    assert (demux["frames_duplicate"], demux["frames_lost"], demux["packets"]) == (1, 0, 6)


def test_ack_flags_name_the_reports_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    from protocols.pus import build_tc_packet

    code, out, _ = run(capsys, build_tc_packet(1, 5, 17, 1, ack=0x9).hex())
    assert code == 0 and "PUS TC 17/1 ack 0x9 (acceptance+completion reports) source 0" in out
    code, out, _ = run(capsys, build_tc_packet(1, 5, 17, 1, ack=0).hex())
    assert code == 0 and "ack 0x0 (no reports)" in out


def test_stream_summary_names_bad_frames_lost_packets_and_the_unfinished_tail(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = bytearray((SAMPLES / "tm_stream.bin").read_bytes())
    data[300] ^= 1  # inside the second frame
    code, out, _ = run(capsys, bytes(data[:-20]).hex())
    assert code == 0
    assert out.splitlines()[-2:] == [
        "TM stream: 2 frames ok, 1 bad (1 bad CRC), 260 octets of garbage, 240 octets of an unfinished frame "
        "at the end; 7 packets, 1 gap (1 frame lost), 1 packet dropped",
        "  dropped at octet 260: bad CRC frame",
    ]
