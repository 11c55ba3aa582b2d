"""TC frames (232.0-B), CLCW, and SDLS-style authentication with the anti-replay window."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import strategies as pst
from protocols.clcw import Clcw, clcw, decode_clcw, encode_clcw
from protocols.errors import AuthError, ProtocolError
from protocols.pus import build_tc_packet
from protocols.sdls import (
    AntiReplay,
    AuthReason,
    FrameAuthenticator,
    KeyStore,
    SecuritySender,
    apply_security,
)
from protocols.tc_frame import (
    FrameType,
    build_bc_frame,
    build_tc_frame,
    parse_control_command,
    parse_tc_frame,
    parse_tc_frame_layout,
    set_vr,
    tc_security_header,
    unlock,
)

GOLDEN_FRAME = bytes.fromhex("20ab0413001801c01600062f11010000ab62cf39")
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def test_golden_bd_frame_carrying_ping() -> None:
    ping = build_tc_packet(1, 22, 17, 1)
    assert build_tc_frame(0x0AB, 1, 0, ping, bypass=True) == GOLDEN_FRAME
    f = parse_tc_frame(GOLDEN_FRAME)
    assert (f.scid, f.vcid, f.frame_seq, f.data, f.frame_type, f.length) == (
        0x0AB, 1, 0, ping, FrameType.BD, 20,
    )


@given(pst.tc_frame_args())
def test_tc_frame_round_trip(args: dict) -> None:
    raw = build_tc_frame(**args)
    f = parse_tc_frame(raw)
    assert (f.scid, f.vcid, f.frame_seq, f.data, f.bypass, f.control) == (
        args["scid"], args["vcid"], args["frame_seq"], args["data"], args["bypass"], args["control"],
    )
    assert len(raw) == f.length
    assert parse_tc_frame_layout(raw) == f


def test_bc_control_commands() -> None:
    assert unlock() == b"\x00"
    assert set_vr(7) == b"\x82\x00\x07"
    assert parse_control_command(set_vr(200)) == ("SET_VR", 200)
    f = parse_tc_frame(build_bc_frame(171, 1, unlock()))
    assert f.frame_type is FrameType.BC and parse_control_command(f.data) == ("UNLOCK", None)
    with pytest.raises(ProtocolError, match="neither Unlock"):
        build_bc_frame(171, 1, b"\x01")
    with pytest.raises(ProtocolError, match="not a valid TC frame type"):
        build_tc_frame(171, 1, 0, b"x", bypass=False, control=True)


def test_tc_frame_limits() -> None:
    assert len(build_tc_frame(1, 1, 0, bytes(1017))) == 1024
    with pytest.raises(ProtocolError, match="more than 1024"):
        build_tc_frame(1, 1, 0, bytes(1018))
    with pytest.raises(ProtocolError, match="SCID"):
        build_tc_frame(1024, 1, 0, b"")


@pytest.mark.parametrize("secured", [False, True])
def test_every_single_bit_flip_in_a_tc_frame_is_detected(secured: bool) -> None:
    data = build_tc_packet(1, 3, 200, 2, bytes(range(8)))
    sender = SecuritySender(KEY) if secured else None
    raw = build_tc_frame(171, 1, 9, data, security=sender)
    auth = FrameAuthenticator(KeyStore({1: KEY}))
    for i in range(len(raw) * 8):
        bad = bytearray(raw)
        bad[i // 8] ^= 0x80 >> (i % 8)
        with pytest.raises(ProtocolError):
            parse_tc_frame(bytes(bad), security=auth if secured else None)


def test_parse_errors_name_what_and_where() -> None:
    with pytest.raises(ProtocolError, match="length field .* says 20 octets, got 21"):
        parse_tc_frame(GOLDEN_FRAME + b"\0")
    bad = bytearray(GOLDEN_FRAME)
    bad[-1] ^= 1
    with pytest.raises(ProtocolError, match="FECF at octet 18"):
        parse_tc_frame(bytes(bad))
    with pytest.raises(ProtocolError, match="at least 7"):
        parse_tc_frame(b"\x20\xab")


# --- CLCW ---------------------------------------------------------------------------------

@given(pst.clcws)
def test_clcw_round_trip_and_fast_path_equals_layout(word: Clcw) -> None:
    raw = encode_clcw(word)
    assert raw == word.to_bytes()
    assert decode_clcw(raw) == word
    assert decode_clcw(int.from_bytes(raw, "big")) == word


def test_clcw_bit_positions() -> None:
    word = Clcw(vcid=1, report_value=0x2A, lockout=True, retransmit=True)
    # type 0, version 0, status 0, COP 1, VCID 1 | lockout + retransmit | N(R) 0x2A
    assert word.to_int() == 0x01042800 | 0x2A
    assert clcw.parse(word.to_bytes()).cop_in_effect == 1


# --- authentication ------------------------------------------------------------------------

def _auth() -> FrameAuthenticator:
    return FrameAuthenticator(KeyStore({1: KEY, 2: OTHER_KEY}))


def _frame(sender: SecuritySender, data: bytes = b"\x01\x02\x03", ns: int = 0) -> bytes:
    return build_tc_frame(171, 1, ns, data, security=sender)


def test_secured_frame_layout_and_mac() -> None:
    import hashlib
    import hmac

    raw = _frame(SecuritySender(KEY, spi=1, seq=5), b"abc")
    assert len(raw) == 5 + 6 + 3 + 16 + 2
    assert raw[5:11] == bytes.fromhex("000100000005")
    mac = hmac.new(KEY, raw[:14], hashlib.sha256).digest()[:16]
    assert raw[14:30] == mac
    f = parse_tc_frame(raw, security=True)
    assert (f.spi, f.sec_seq, f.data, f.mac) == (1, 5, b"abc", mac)
    assert tc_security_header.parse(raw[5:11]) == {"security_parameter_index": 1, "sequence_number": 5}
    assert _auth().verify(raw).data == b"abc"


def test_sender_seq_starts_at_one_and_increments() -> None:
    s = SecuritySender(KEY)
    seqs = [parse_tc_frame(_frame(s), security=True).sec_seq for _ in range(3)]
    assert seqs == [1, 2, 3]


def test_wrong_key_is_bad_mac() -> None:
    raw = _frame(SecuritySender(OTHER_KEY, spi=1))
    with pytest.raises(AuthError) as err:
        _auth().verify(raw)
    assert err.value.reason == AuthReason.BAD_MAC


def test_unknown_spi() -> None:
    raw = _frame(SecuritySender(KEY, spi=9))
    with pytest.raises(AuthError) as err:
        _auth().verify(raw)
    assert err.value.reason == AuthReason.UNKNOWN_SPI and err.value.spi == 9


def test_frame_without_security_header() -> None:
    raw = build_tc_frame(171, 1, 0, b"short")
    with pytest.raises(AuthError) as err:
        _auth().verify(raw)
    assert err.value.reason == AuthReason.NO_SECURITY_HEADER


@given(st.data())
def test_any_altered_octet_fails_authentication_even_with_a_fixed_fecf(data: st.DataObject) -> None:
    raw = bytearray(_frame(SecuritySender(KEY), bytes(range(20))))
    i = data.draw(st.integers(0, len(raw) - 3))
    raw[i] ^= data.draw(st.integers(1, 255))
    from protocols.crc import crc16

    raw[-2:] = crc16(bytes(raw[:-2])).to_bytes(2, "big")
    with pytest.raises(ProtocolError):
        _auth().verify(bytes(raw))


def test_replay_is_rejected_only_after_commit() -> None:
    auth = _auth()
    s = SecuritySender(KEY)
    raw = _frame(s)
    v = auth.verify(raw)
    # FARM-1 discarded it: a retransmission of the same bytes is still accepted
    assert auth.verify(raw) == v
    auth.commit(v.spi, v.seq)
    with pytest.raises(AuthError) as err:
        auth.verify(raw)
    assert err.value.reason == AuthReason.REPLAYED


def test_stale_seq_out_of_window_and_reorder_inside_window() -> None:
    auth = _auth()
    frames = [_frame(SecuritySender(KEY, seq=n)) for n in (1, 2, 70, 100)]
    for raw in (frames[2], frames[3]):
        v = auth.verify(raw)
        auth.commit(v.spi, v.seq)
    # 100 accepted: 70 is within the window and never seen -> accepted
    with pytest.raises(AuthError) as err:
        auth.verify(frames[0])
    assert err.value.reason == AuthReason.OUT_OF_WINDOW
    with pytest.raises(AuthError) as err:
        auth.verify(frames[2])
    assert err.value.reason == AuthReason.REPLAYED
    late = _frame(SecuritySender(KEY, seq=40))
    assert auth.verify(late).seq == 40
    edge = _frame(SecuritySender(KEY, seq=36))  # 100 - 64: out of window
    with pytest.raises(AuthError) as err:
        auth.verify(edge)
    assert err.value.reason == AuthReason.OUT_OF_WINDOW


def test_spis_have_separate_windows() -> None:
    auth = _auth()
    a = _frame(SecuritySender(KEY, spi=1, seq=10))
    b = _frame(SecuritySender(OTHER_KEY, spi=2, seq=10))
    for raw in (a, b):
        v = auth.verify(raw)
        auth.commit(v.spi, v.seq)
    assert auth.associations[1].replay.highest == 10 == auth.associations[2].replay.highest


@given(st.lists(st.integers(1, 300), max_size=60))
def test_anti_replay_matches_a_set_model(seqs: list[int]) -> None:
    window = AntiReplay()
    accepted: set[int] = set()
    for seq in seqs:
        highest = max(accepted, default=0)
        if seq <= highest - 64:
            expected = AuthReason.OUT_OF_WINDOW
        elif seq in accepted:
            expected = AuthReason.REPLAYED
        else:
            expected = None
        assert window.check(seq) == expected
        if expected is None:
            window.commit(seq)
            accepted.add(seq)


def test_apply_security_to_a_plain_frame() -> None:
    secured = apply_security(GOLDEN_FRAME, SecuritySender(KEY, seq=3))
    f = parse_tc_frame(secured, security=_auth())
    assert (f.data, f.sec_seq, f.frame_type) == (build_tc_packet(1, 22, 17, 1), 3, FrameType.BD)


def test_key_file_loading_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "keys.json"
    good.write_text(json.dumps({"keys": {"1": KEY.hex(), "7": OTHER_KEY.hex()}}))
    store = KeyStore.load(good)
    assert store.get(1) == KEY and store.get(7) == OTHER_KEY and 2 not in store
    cases = {
        "not json": "is not JSON",
        json.dumps({"key": {}}): "expected an object",
        json.dumps({"keys": {"x": KEY.hex()}}): "SPI 'x' is not an integer",
        json.dumps({"keys": {"1": "zz"}}): "not valid hex",
        json.dumps({"keys": {"1": "00ff"}}): "must be 32 octets",
        json.dumps({"keys": {}}): "no keys",
    }
    for text, message in cases.items():
        path = tmp_path / "bad.json"
        path.write_text(text)
        with pytest.raises(ProtocolError, match=message):
            KeyStore.load(path)
    with pytest.raises(ProtocolError, match="cannot read key file"):
        KeyStore.load(tmp_path / "missing.json")


@given(pst.secured_tc_frame_args())
def test_secured_frame_round_trip(args: dict) -> None:
    key, spi, seq = args.pop("key"), args.pop("spi"), args.pop("seq")
    raw = build_tc_frame(**args, security=SecuritySender(key, spi=spi, seq=seq))
    f = parse_tc_frame(raw, security=FrameAuthenticator(KeyStore({spi: key})))
    assert (f.data, f.spi, f.sec_seq, f.frame_seq, f.bypass, f.control) == (
        args["data"], spi, seq, args["frame_seq"], args["bypass"], args["control"],
    )
    assert len(raw) == len(args["data"]) + 5 + 22 + 2


def test_auth_reasons_match_the_dictionary_enum() -> None:
    from protocols.dictionary import load_dictionary

    enum = load_dictionary().enums["auth_reason"]
    assert enum == {r.value: r.name for r in AuthReason}
