"""The rover's authentication (firmware_py/sdls.py): wrong keys, altered octets, replays
and stale sequence numbers are rejected with their reason; verify changes nothing, commit
records; the HMAC equals the standard library's."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from firmware_py.sdls import (
    AUTH_BAD_MAC,
    AUTH_NO_SECURITY_HEADER,
    AUTH_OK,
    AUTH_OUT_OF_WINDOW,
    AUTH_REPLAYED,
    AUTH_UNKNOWN_SPI,
    MIN_SECURED,
    Security,
    hmac_sha256,
    load_keys,
)
from protocols import strategies as pst
from protocols.crc import crc16
from protocols.sdls import SecuritySender
from protocols.tc_frame import build_tc_frame

KEY = bytes(range(32))
PING = bytes.fromhex("1801c01600062f11010000ab62")


def frame(seq: int, key: bytes = KEY, spi: int = 1, data: bytes = PING) -> bytes:
    return build_tc_frame(171, 1, seq & 0xFF, data, security=SecuritySender(key, spi, seq))


def verify(sec: Security, f: bytes) -> int:
    return sec.verify(f, len(f))


@given(st.binary(max_size=200), st.binary(max_size=300))
def test_hmac_equals_the_standard_library(key: bytes, msg: bytes) -> None:
    assert hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


def test_reason_codes_are_the_dictionary_auth_reason_enum() -> None:
    d = json.loads((Path(__file__).resolve().parents[2] / "protocols" / "dictionary.json").read_text())
    names = {int(k): v for k, v in d["enums"]["auth_reason"].items()}
    assert names == {
        AUTH_UNKNOWN_SPI: "UNKNOWN_SPI",
        AUTH_BAD_MAC: "BAD_MAC",
        AUTH_REPLAYED: "REPLAYED",
        AUTH_OUT_OF_WINDOW: "OUT_OF_WINDOW",
        AUTH_NO_SECURITY_HEADER: "NO_SECURITY_HEADER",
    }


def test_good_frame_gives_spi_seq_and_data_span() -> None:
    sec = Security({1: KEY})
    f = frame(7)
    assert verify(sec, f) == AUTH_OK
    assert (sec.spi, sec.seq, f[sec.data_start : sec.data_end]) == (1, 7, PING)


@given(pst.keys)
def test_wrong_key_is_bad_mac(other: bytes) -> None:
    sec = Security({1: KEY})
    f = frame(1, key=other)
    assert verify(sec, f) == (AUTH_OK if other == KEY else AUTH_BAD_MAC)


def test_unknown_spi_and_too_short() -> None:
    sec = Security({1: KEY})
    assert verify(sec, frame(1, spi=2)) == AUTH_UNKNOWN_SPI
    assert sec.spi == 2
    short = build_tc_frame(171, 1, 0, bytes(MIN_SECURED - 8))
    assert verify(sec, short) == AUTH_NO_SECURITY_HEADER


@given(st.integers(0, len(frame(1)) * 8 - 17))
def test_every_single_bit_flip_before_the_fecf_is_rejected(bit: int) -> None:
    """Even with the FECF recomputed by an attacker."""
    sec = Security({1: KEY})
    f = bytearray(frame(1))
    f[bit // 8] ^= 0x80 >> (bit % 8)
    c = crc16(bytes(f[:-2]))
    f[-2:] = bytes([c >> 8, c & 0xFF])
    assert verify(sec, bytes(f)) in (AUTH_BAD_MAC, AUTH_UNKNOWN_SPI)


def test_verify_does_not_record_so_a_cop1_retransmission_passes() -> None:
    sec = Security({1: KEY})
    f = frame(1)
    assert verify(sec, f) == AUTH_OK
    assert verify(sec, f) == AUTH_OK  # FARM discarded it; the ground resends the same bytes
    sec.commit(1, 1)
    assert verify(sec, f) == AUTH_REPLAYED


def test_window_replays_and_stale_numbers() -> None:
    sec = Security({1: KEY})
    for s in (1, 2, 3, 10):
        assert verify(sec, frame(s)) == AUTH_OK
        sec.commit(1, s)
    assert sec.highest(1) == 10
    assert verify(sec, frame(3)) == AUTH_REPLAYED
    assert verify(sec, frame(5)) == AUTH_OK  # inside the window, never seen
    sec.commit(1, 100)
    assert verify(sec, frame(36)) == AUTH_OUT_OF_WINDOW  # 100 - 64
    assert verify(sec, frame(37)) == AUTH_OK
    assert verify(sec, frame(100)) == AUTH_REPLAYED
    sec.commit(1, 37)
    assert verify(sec, frame(37)) == AUTH_REPLAYED
    sec.commit(1, 1000)  # far jump clears the whole window
    assert verify(sec, frame(999)) == AUTH_OK
    assert verify(sec, frame(936)) == AUTH_OUT_OF_WINDOW


@given(st.lists(st.integers(0, 300), max_size=60))
def test_window_matches_a_set_model(seqs: list[int]) -> None:
    sec = Security({1: KEY})
    accepted: set[int] = set()
    high = 0
    for s in seqs:
        if s > high:
            want = AUTH_OK
        elif high - s >= 64:
            want = AUTH_OUT_OF_WINDOW
        elif s in accepted:
            want = AUTH_REPLAYED
        else:
            want = AUTH_OK
        assert verify(sec, frame(s)) == want
        if want == AUTH_OK:
            sec.commit(1, s)
            accepted.add(s)
            high = max(high, s)


def test_keys_are_per_spi() -> None:
    other = bytes(32)
    sec = Security({1: KEY, 2: other})
    assert verify(sec, frame(5, key=other, spi=2)) == AUTH_OK
    sec.commit(2, 5)
    assert verify(sec, frame(5, key=KEY, spi=1)) == AUTH_OK  # windows are per SPI
    assert verify(sec, frame(5, key=KEY, spi=2)) == AUTH_BAD_MAC


def test_firmware_builds_what_it_verifies() -> None:
    sec = Security({3: KEY})
    buf = bytearray(128)
    n = sec.build_frame(buf, 1, 0, 171, 1, 0, 3, 9, PING)
    assert bytes(buf[:n]) == build_tc_frame(171, 1, 0, PING, bypass=True, security=SecuritySender(KEY, 3, 9))
    assert sec.verify(buf, n) == AUTH_OK


def test_key_file_loads(tmp_path: Path) -> None:
    p = tmp_path / "keys.json"
    p.write_text(json.dumps({"keys": {"1": KEY.hex(), "7": bytes(32).hex()}}))
    assert load_keys(str(p)) == {1: KEY, 7: bytes(32)}


_MPY_SCRIPT = """
import gc
from firmware_py.sdls import Security, load_keys
keys = load_keys({path!r})
sec = Security(keys)
buf = bytearray(128)
ping = bytes.fromhex("1801c01600062f11010000ab62")
out = []
def v(n):
    return sec.verify(buf, n)
n = sec.build_frame(buf, 0, 0, 171, 1, 0, 1, 5, ping); out.append(v(n)); sec.commit(1, 5)
out.append(v(n))                                     # replay
n = sec.build_frame(buf, 0, 0, 171, 1, 0, 1, 70, ping); out.append(v(n)); sec.commit(1, 70)
n = sec.build_frame(buf, 0, 0, 171, 1, 0, 1, 6, ping); out.append(v(n))   # stale
n = sec.build_frame(buf, 0, 0, 171, 1, 0, 1, 7, ping); out.append(v(n))   # in window
buf[12] ^= 1; out.append(v(n))                        # altered
wrong = Security({{1: bytes(32)}})
n = wrong.build_frame(buf, 0, 0, 171, 1, 0, 1, 80, ping); out.append(v(n))  # wrong key
n = sec.build_frame(buf, 0, 0, 171, 1, 0, 1, 81, ping); buf[6] = 2; out.append(v(n))  # SPI 2
out.append(v(20))                                    # too short
print(" ".join(str(x) for x in out))
"""


def test_authentication_rejections_under_micropython(run_mpy: Callable[..., Any], tmp_path: Path) -> None:
    p = tmp_path / "keys.json"
    p.write_text(json.dumps({"keys": {"1": KEY.hex()}}))
    out = run_mpy(_MPY_SCRIPT.format(path=str(p))).stdout.split()
    assert [int(x) for x in out] == [
        AUTH_OK, AUTH_REPLAYED, AUTH_OK, AUTH_OUT_OF_WINDOW, AUTH_OK, AUTH_BAD_MAC, AUTH_BAD_MAC,
        AUTH_UNKNOWN_SPI, AUTH_NO_SECURITY_HEADER,
    ]


# The legacy suite's layout pinned: SCID 0x0AB, VCID 1, N(S) 0, SPI 1, seq 5, the golden
# PING, key 00..1f; MAC = HMAC-SHA256 (the standard library's) truncated to 16 octets.
LEGACY_AD = "00ab0429000001000000051801c01600062f11010000ab628b2c198637f3be10cb11efb66bcc5682f7d8"
LEGACY_BD = "20ab0429000001000000051801c01600062f11010000ab621aaf97a7ecad6c0e663c2820e09e8ffa81dc"


def test_legacy_hmac_frames_are_byte_for_byte_the_pinned_ones() -> None:
    sec = Security({1: KEY})
    buf = bytearray(64)
    for bypass, want in ((0, LEGACY_AD), (1, LEGACY_BD)):
        n = sec.build_frame(buf, bypass, 0, 171, 1, 0, 1, 5, PING)
        assert bytes(buf[:n]).hex() == want
        mac = hmac.new(KEY, bytes.fromhex(want)[:24], hashlib.sha256).digest()[:16]
        assert bytes.fromhex(want)[24:40] == mac
        assert sec.verify(bytearray.fromhex(want), n) == AUTH_OK


def test_a_bd_frame_needs_a_number_above_the_highest() -> None:
    sec = Security({1: KEY})
    sec.commit(1, 10)
    bd = bytearray.fromhex(LEGACY_BD)  # seq 5: inside the window, never seen
    assert sec.verify(bd, len(bd)) == AUTH_REPLAYED
    ad = bytearray.fromhex(LEGACY_AD)
    assert sec.verify(ad, len(ad)) == AUTH_OK  # an AD frame there is FARM-1's to judge
