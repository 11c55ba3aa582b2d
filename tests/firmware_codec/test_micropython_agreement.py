"""The firmware codec under the real MicroPython unix port (Pico heap limit) agrees with
the ground codec: hypothesis makes batches of cases in CPython, one MicroPython process
answers a whole batch (see mpy_driver.py), and every answer must equal the ground's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import strategies as pst
from protocols.crc import crc16
from protocols.errors import AuthError, ProtocolError
from protocols.pus import build_tc_packet, build_tm_packet, parse_tc_packet
from protocols.sdls import FrameAuthenticator, KeyStore, SecuritySender
from protocols.stream import TcDeframer
from protocols.tc_frame import build_tc_frame, parse_tc_frame
from protocols.tm_frame import TmMultiplexer

Batch = Callable[[list[str]], list[str]]
# Each example is one MicroPython process answering a batch of cases: a few batches
# by default, more under HYPOTHESIS_PROFILE=thorough.
BATCH = 25
mpy_settings = settings(max_examples=max(4, settings.default.max_examples // 25), deadline=None)


def hx(b: bytes) -> str:
    return b.hex() if b else "-"


def check(mpy_batch: Batch, cases: list[tuple[str, str]]) -> None:
    answers = mpy_batch([line for line, _ in cases])
    for (line, want), got in zip(cases, answers, strict=True):
        assert got == want, f"MicroPython answered {got!r} to {line[:120]!r}, ground says {want!r}"


@mpy_settings
@given(st.lists(st.binary(max_size=300), min_size=BATCH, max_size=BATCH))
def test_crc_agrees(mpy_batch: Batch, blobs: list[bytes]) -> None:
    check(mpy_batch, [(f"crc {hx(b)}", f"{crc16(b):04x}") for b in blobs])


def _tc_packet_case(raw: bytes) -> tuple[str, str]:
    try:
        p = parse_tc_packet(raw)
    except ProtocolError:
        return f"tcpkt {hx(raw)}", "reject"
    fields = (p.apid, p.sequence_flags, p.seq_count, p.ack, p.service, p.subservice, p.source_id)
    return f"tcpkt {hx(raw)}", "0 " + " ".join(map(str, fields)) + f" {hx(p.app_data)} {len(raw)}"


@st.composite
def tc_packets_maybe_corrupted(draw: st.DrawFn) -> bytes:
    raw = bytearray(build_tc_packet(**draw(pst.tc_packet_args(max_data=100))))
    if draw(st.booleans()):
        bit = draw(st.integers(0, len(raw) * 8 - 1))
        raw[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(raw)


@mpy_settings
@given(st.lists(tc_packets_maybe_corrupted(), min_size=BATCH, max_size=BATCH))
def test_tc_packet_parse_agrees(mpy_batch: Batch, packets: list[bytes]) -> None:
    cases = [_tc_packet_case(p) for p in packets]
    answers = mpy_batch([line for line, _ in cases])
    for (line, want), got in zip(cases, answers, strict=True):
        if want == "reject":
            assert got.split()[0] != "0", line
        else:
            assert got == want, line


@mpy_settings
@given(st.lists(pst.tm_packet_args(max_data=300), min_size=BATCH, max_size=BATCH))
def test_tm_packet_build_agrees(mpy_batch: Batch, packets: list[dict[str, Any]]) -> None:
    cases = []
    for a in packets:
        t = a["time"]
        line = "tmpkt {} {} {} {} {} {} {} {} {}".format(
            a["apid"], a["seq_count"], a["msg_counter"], a["dest_id"], int.from_bytes(t[:4], "big"),
            int.from_bytes(t[4:], "big"), a["service"], a["subservice"], hx(a["data"]),
        )
        cases.append((line, build_tm_packet(**a).hex()))
    check(mpy_batch, cases)


@mpy_settings
@given(st.lists(pst.tc_frame_args(max_data=300), min_size=BATCH, max_size=BATCH))
def test_tc_frame_build_and_header_agree(mpy_batch: Batch, frames: list[dict[str, Any]]) -> None:
    cases = []
    for a in frames:
        raw = build_tc_frame(**a)
        f = parse_tc_frame(raw)
        line = "tcbuild {} {} {} {} {} {}".format(
            int(a["bypass"]), int(a["control"]), a["scid"], a["vcid"], a["frame_seq"], hx(a["data"])
        )
        cases.append((line, raw.hex()))
        header = (int(f.bypass), int(f.control), f.scid, f.vcid, f.length, f.frame_seq)
        cases.append((f"tchdr {raw.hex()}", " ".join(map(str, header))))
    check(mpy_batch, cases)


@st.composite
def tc_stream_case(draw: st.DrawFn) -> tuple[str, str]:
    out = bytearray()
    for _ in range(draw(st.integers(0, 5))):
        out += bytes(draw(st.lists(st.sampled_from([0xEB, 0x90, 0x00, 0x20, 0x03, 0xFF]), max_size=20)))
        frame = bytearray(build_tc_frame(**draw(pst.tc_frame_args(max_data=120))))
        if draw(st.integers(0, 3)) == 0:
            bit = draw(st.integers(0, len(frame) * 8 - 1))
            frame[bit // 8] ^= 0x80 >> (bit % 8)
        out += b"\xeb\x90" + frame
    out += draw(st.binary(max_size=20))
    sizes = draw(st.lists(st.integers(1, 300), min_size=1, max_size=8))
    ground = TcDeframer()
    good: list[bytes] = []
    i = k = 0
    while i < len(out):
        n = sizes[k % len(sizes)]
        good += ground.feed(bytes(out[i : i + n]))
        i += n
        k += 1
    c = ground.counters
    want = "{} {} {} {} {} {} {}".format(
        ",".join(g.hex() for g in good) or "-", c.frames_ok, c.bad_crc_frames, c.bad_length_frames,
        c.bad_header_frames, c.garbage_octets, ground.pending,
    )
    return f"deframe 1024 {','.join(map(str, sizes))} {hx(bytes(out))}", want


@mpy_settings
@given(st.lists(tc_stream_case(), min_size=BATCH, max_size=BATCH))
def test_tc_deframer_agrees(mpy_batch: Batch, cases: list[tuple[str, str]]) -> None:
    check(mpy_batch, cases)


@st.composite
def auth_session(draw: st.DrawFn) -> list[tuple[str, str]]:
    """A verify/commit session; answers from the ground's reference model."""
    key = draw(pst.keys)
    other = bytes(b ^ 0x5A for b in key)
    spi = draw(st.integers(1, 0xFFFE))
    window = draw(st.sampled_from([64, 64, 16, 1]))
    ground = FrameAuthenticator(KeyStore({spi: key}), window=window)
    cases = [(f"sa {spi}:{key.hex()} {window}", "ok")]
    fargs = draw(pst.tc_frame_args(max_data=60))
    for _ in range(draw(st.integers(1, 30))):
        seq = draw(st.integers(0, 150))
        kind = draw(st.sampled_from(["good", "good", "good", "wrong_key", "other_spi", "altered", "short"]))
        use_key = other if kind == "wrong_key" else key
        use_spi = spi + 1 if kind == "other_spi" else spi
        frame = bytearray(
            build_tc_frame(
                fargs["scid"], fargs["vcid"], fargs["frame_seq"], fargs["data"], fargs["bypass"], fargs["control"],
                SecuritySender(use_key, use_spi, seq),
            )
        )
        if kind == "altered":
            # any octet after the length field, FECF recomputed (an attacker can do that)
            pos = draw(st.integers(4, len(frame) - 3))
            frame[pos] ^= draw(st.integers(1, 255))
            c = crc16(bytes(frame[:-2]))
            frame[-2:] = bytes([c >> 8, c & 0xFF])
        if kind == "short":
            frame = bytearray(build_tc_frame(fargs["scid"], fargs["vcid"], 0, b"\x01" * draw(st.integers(0, 21))))
        try:
            v = ground.verify(bytes(frame))
            want = f"0 {v.spi} {v.seq} {hx(v.data)}"
            accepted = True
        except AuthError as exc:
            want = str(exc.reason)
            accepted = False
        cases.append((f"verify {bytes(frame).hex()}", want))
        if accepted and draw(st.booleans()):
            ground.commit(v.spi, v.seq)
            cases.append((f"commit {v.spi} {v.seq}", "ok"))
    return cases


@mpy_settings
@given(st.lists(auth_session(), min_size=4, max_size=4))
def test_authentication_agrees_with_ground_model(mpy_batch: Batch, sessions: list[list[tuple[str, str]]]) -> None:
    cases = [c for s in sessions for c in s]
    answers = mpy_batch([line for line, _ in cases])
    for (line, want), got in zip(cases, answers, strict=True):
        if want in ("1", "2", "3", "4", "5"):
            assert got.split()[0] == want, f"{line[:80]}: MicroPython {got!r}, ground reason {want}"
        else:
            assert got == want, f"{line[:80]}: MicroPython {got!r}, ground {want!r}"


@st.composite
def tm_frame_session(draw: st.DrawFn) -> tuple[str, str]:
    frame_len = draw(st.sampled_from([64, 256]))
    clcw = [0]
    mux = TmMultiplexer(171, 0, frame_len, clcw=lambda: clcw[0])
    ops: list[str] = []
    frames: list[bytes] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["put", "put", "put", "flush", "idle", "clcw"]))
        if kind == "put":
            p = draw(pst.pus_tm_packets(max_data=300))
            ops.append("p:" + p.hex())
            mux.push(p)
            frames += mux.frames()
        elif kind == "clcw":
            clcw[0] = draw(st.integers(0, 0xFFFFFFFF))
            ops.append(f"c:{clcw[0]}")
        elif kind == "flush":
            ops.append("f")
            frames += mux.flush()
        else:
            ops.append("i")
            frames += mux.flush() if mux.pending else [mux.idle_frame()]
    want = ",".join("1acffc1d" + f.hex() for f in frames) or "-"
    return f"tmframes 171 0 {frame_len} {','.join(ops) or 'x'}", want


@mpy_settings
@given(st.lists(tm_frame_session(), min_size=10, max_size=10))
def test_tm_framer_agrees_with_ground_multiplexer(mpy_batch: Batch, cases: list[tuple[str, str]]) -> None:
    check(mpy_batch, cases)


@st.composite
def command_case(draw: st.DrawFn) -> tuple[int, int, bytes]:
    from protocols.dictionary import load_dictionary

    cmds = sorted(load_dictionary().by_code)
    service, subservice = draw(st.sampled_from(cmds + [(99, 1)]))
    size = draw(st.integers(0, 16))
    return service, subservice, draw(st.binary(min_size=size, max_size=size))


@mpy_settings
@given(st.lists(command_case(), min_size=60, max_size=60))
def test_dictionary_checks_agree(
    mpy_batch: Batch, cpy_batch: Batch, tmp_path_factory: Any, cases: list[tuple[int, int, bytes]]
) -> None:
    from protocols.dictionary import load_dictionary

    path = tmp_path_factory.mktemp("flash") / "dictionary.json"
    path.write_bytes(load_dictionary().canonical_bytes())
    lines = [f"dload {path}"] + [f"dcheck {s} {ss} {hx(b)}" for s, ss, b in cases]
    want = cpy_batch(lines)  # the CPython run of the same codec, itself checked against the ground
    assert want[0] == str(load_dictionary().short_hash())
    assert mpy_batch(lines) == want
