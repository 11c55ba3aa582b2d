"""The rover's AES-256-GCM and GMAC (firmware_py/gcm.py) against oracles it did not write:
the NIST CAVP vectors (gcmEncryptExtIV256.rsp, CAVS 14.0, including the empty-plaintext
ones that are GMAC), and the `cryptography` package both ways under hypothesis, on
CPython and on the MicroPython unix port with the Pico's heap limit (viper GHASH)."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from firmware_py.gcm import Gcm
from firmware_py.sdls import AUTH_BAD_MAC, AUTH_OK, Security
from tests.security.sdls_ground import open_tc, secure_tc

VECTORS = json.loads((Path(__file__).parent / "fixtures" / "gcmEncryptExtIV256.json").read_text())["vectors"]
keys = st.binary(min_size=32, max_size=32)
ivs = st.binary(min_size=12, max_size=12)


def seal(key: bytes, iv: bytes, pt: bytes, aad: bytes) -> tuple[bytes, bytes]:
    g = Gcm(key)
    buf = bytearray(pt)
    g.begin(iv, 0)
    g.aad(aad, 0, len(aad))
    g.ctr(buf, 0, len(buf))
    g.text(buf, 0, len(buf))
    tag = bytearray(16)
    g.finish(tag, 0)
    return bytes(buf), bytes(tag)


def test_nist_cavp_vectors() -> None:
    assert len(VECTORS) == 50 and sum(v["ptlen"] == 0 for v in VECTORS) == 10  # 10 are GMAC
    for v in VECTORS:
        key, iv, pt, aad = (bytes.fromhex(v[k]) for k in ("key", "iv", "pt", "aad"))
        ct, tag = seal(key, iv, pt, aad)
        assert (ct.hex(), tag.hex()) == (v["ct"], v["tag"]), (v["ptlen"], v["aadlen"], v["count"])


def test_nist_vectors_decrypt_and_a_changed_tag_fails() -> None:
    for v in VECTORS[::7]:
        key, iv, ct, aad, tag = (bytes.fromhex(v[k]) for k in ("key", "iv", "ct", "aad", "tag"))
        g = Gcm(key)
        buf = bytearray(ct)
        g.begin(iv, 0)
        g.aad(aad, 0, len(aad))
        g.text(buf, 0, len(buf))
        assert g.check(tag, 0)
        g.ctr(buf, 0, len(buf))
        assert buf.hex() == v["pt"]
        bad = bytearray(tag)
        bad[15] ^= 1
        g.begin(iv, 0)
        g.aad(aad, 0, len(aad))
        g.text(ct, 0, len(ct))
        assert not g.check(bad, 0)


@given(keys, ivs, st.binary(max_size=300), st.binary(max_size=100), st.data())
def test_equals_cryptography_for_any_split_of_the_input(
    key: bytes, iv: bytes, pt: bytes, aad: bytes, data: st.DataObject
) -> None:
    """Fed in pieces (as the frame code feeds header, SPI and data), the result is the same."""
    want = AESGCM(key).encrypt(iv, pt, aad)
    g = Gcm(key)
    g.begin(iv, 0)
    cut = data.draw(st.integers(0, len(aad)))
    g.aad(aad, 0, cut)
    g.aad(aad, cut, len(aad))
    buf = bytearray(pt)
    cut = data.draw(st.integers(0, len(pt)))
    g.ctr(buf, 0, cut)
    g.ctr(buf, cut, len(buf))
    g.text(buf, 0, cut)
    g.text(buf, cut, len(buf))
    tag = bytearray(16)
    g.finish(tag, 0)
    assert bytes(buf) + bytes(tag) == want


SUITES = st.sampled_from(["aes-gcm", "gmac"])
FRAME_DATA = st.binary(min_size=0, max_size=200)


@given(SUITES, keys, st.integers(1, 0xFFFFFFFF), st.integers(0, 0xFFFF), FRAME_DATA, st.booleans(), st.integers(0, 63))
def test_frames_built_by_cryptography_are_accepted(
    suite: str, key: bytes, seq: int, spi: int, data: bytes, bypass: bool, vcid: int
) -> None:
    from firmware_py.sdls import SUITES as FW

    sec = Security({spi: (FW[suite], key, 1)})
    f = bytearray(secure_tc(suite, key, spi, seq, data, bypass=bypass, vcid=vcid))
    assert sec.verify(f, len(f)) == AUTH_OK
    assert (sec.spi, sec.seq, bytes(f[sec.data_start : sec.data_end])) == (spi, seq, data)
    other = bytearray(secure_tc(suite, bytes(b ^ 1 for b in key), spi, seq, data, bypass=bypass, vcid=vcid))
    assert sec.verify(other, len(other)) == AUTH_BAD_MAC


@given(SUITES, keys, st.integers(1, 0xFFFFFFFF), st.integers(0, 0xFFFF), FRAME_DATA, st.booleans(), st.integers(0, 255))
def test_frames_built_by_the_rover_are_opened_by_cryptography(
    suite: str, key: bytes, seq: int, spi: int, data: bytes, bypass: bool, ns: int
) -> None:
    from firmware_py.sdls import SUITES as FW

    sec = Security({spi: (FW[suite], key, 1)})
    buf = bytearray(300)
    n = sec.build_frame(buf, int(bypass), 0, 171, 1, ns, spi, seq, data)
    assert open_tc(suite, key, bytes(buf[:n])) == (spi, seq, data)
    assert bytes(buf[:n]) == secure_tc(suite, key, spi, seq, data, bypass=bypass, ns=ns)


def test_the_authentication_mask_covers_the_vcid_only() -> None:
    """Header bits outside the VCID (bypass, SCID, length, N(S)) are not authenticated
    by the MAC (CCSDS 355.0-B-2's TC mask 00 00 FC 00 00); the VCID is."""
    sec = Security({1: (3, bytes(32), 1)})
    f = bytearray(secure_tc("aes-gcm", bytes(32), 1, 9, b"abc", ns=4))
    g = bytearray(f)
    g[4] = 5  # N(S): FARM's business, not the MAC's
    assert sec.verify(g, len(g)) == AUTH_OK
    h = bytearray(f)
    h[2] ^= 0x04  # the VCID's low bit
    assert sec.verify(h, len(h)) == AUTH_BAD_MAC
    try:
        AESGCM(bytes(32)).decrypt(bytes(h[7:19]), bytes(h[19:-2]), bytes([0, 0, h[2] & 0xFC, 0, 0]) + bytes(h[5:7]))
        raise AssertionError("cryptography accepted a changed VCID")
    except InvalidTag:
        pass


# -- the same under MicroPython (unix port, Pico heap limit) --

_MPY_VECTORS = """
import json
from firmware_py import gcm
from firmware_py.gcm import Gcm
print("native", gcm.NATIVE)
vs = json.loads(open({path!r}).read())["vectors"]
bad = 0
from binascii import hexlify, unhexlify
for v in vs:
    key = unhexlify(v["key"]); iv = unhexlify(v["iv"]); aad = unhexlify(v["aad"])
    buf = bytearray(unhexlify(v["pt"]))
    g = Gcm(key)
    g.begin(iv, 0); g.aad(aad, 0, len(aad)); g.ctr(buf, 0, len(buf)); g.text(buf, 0, len(buf))
    t = bytearray(16); g.finish(t, 0)
    if hexlify(buf).decode() != v["ct"] or hexlify(t).decode() != v["tag"]:
        bad += 1
print("checked", len(vs), "bad", bad)
"""


def test_nist_vectors_under_micropython(run_mpy: Callable[..., Any]) -> None:
    path = str(Path(__file__).parent / "fixtures" / "gcmEncryptExtIV256.json")
    out = run_mpy(_MPY_VECTORS.format(path=path)).stdout.split("\n")
    assert out[0] == "native True"  # the viper GHASH is what ran
    assert out[1] == "checked 50 bad 0"


_MPY_FRAMES = """
import sys
from binascii import hexlify, unhexlify
from firmware_py.sdls import Security
buf = bytearray(300)
for line in sys.stdin:
    w = line.split()
    if not w or w[0] == "quit":
        break
    suite, key, spi, seq, bypass, hx = int(w[0]), unhexlify(w[1]), int(w[2]), int(w[3]), int(w[4]), w[5]
    s = Security({spi: (suite, key, 1)})
    data = b"" if hx == "-" else unhexlify(hx)
    n = s.build_frame(buf, bypass, 0, 171, 1, 0, spi, seq, data)
    f = bytearray(unhexlify(w[6]))
    r = s.verify(f, len(f))
    print(hexlify(buf[:n]).decode(), r, hexlify(f[s.data_start:s.data_end]).decode() or "-")
"""


@given(st.lists(st.tuples(SUITES, keys, st.integers(0, 0xFFFF), st.integers(1, 0xFFFFFFFF), st.booleans(), FRAME_DATA),
                min_size=1, max_size=8))
def test_micropython_builds_and_accepts_what_cryptography_does(run_mpy: Callable[..., Any], cases: list[Any]) -> None:
    from firmware_py.sdls import SUITES as FW

    lines = []
    want = []
    for suite, key, spi, seq, bypass, data in cases:
        f = secure_tc(suite, key, spi, seq, data, bypass=bypass)
        lines.append(f"{FW[suite]} {key.hex()} {spi} {seq} {int(bypass)} {data.hex() or '-'} {f.hex()}")
        want.append(f"{f.hex()} 0 {data.hex() or '-'}")
    out = run_mpy(_MPY_FRAMES, stdin="\n".join(lines) + "\nquit\n").stdout.splitlines()
    assert out == want


_MPY_FALLBACK = """
from firmware_py import gcm
import random
random.seed(7)
same = 0
for i in range(40):
    h = bytes(random.getrandbits(8) for _ in range(16))
    x = bytearray(random.getrandbits(8) for _ in range(16))
    m = gcm._table(h)
    a = bytearray(x); b = bytearray(x)
    gcm._gmult_py(a, m, gcm._R)
    gcm._gmult(b, m, gcm._R)
    same += a == b
print(gcm.NATIVE, same)
"""


def test_viper_and_plain_ghash_agree_under_micropython(run_mpy: Callable[..., Any]) -> None:
    assert run_mpy(_MPY_FALLBACK).stdout.split() == ["True", "40"]


def test_struct_layout_of_the_iv() -> None:
    f = secure_tc("gmac", bytes(32), 3, 0x01020304, b"")
    assert f[5:19] == struct.pack(">H", 3) + bytes(8) + bytes([1, 2, 3, 4])
