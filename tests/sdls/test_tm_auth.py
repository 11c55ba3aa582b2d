"""Optional TM authentication (key file tm_spi): the ground opens what the rover's
`tm_secure` makes, with an independent AESGCM check of the layout, and refuses altered frames."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from hil.gs.mission import Mission
from hil.gs.state import GroundState
from protocols.crc import crc16
from protocols.errors import AuthError
from protocols.sdls import KeyStore, SaConfig, Suite, open_tm, secure_tm
from protocols.tm_frame import TmMultiplexer, build_tm_frame

M = Mission.load()
L = M.tm_frame_length
OVERHEAD = 2 + 12 + 16
KEY = bytes(range(100, 132))
TM_MASK = bytes.fromhex("000E00000000")


def _plain(data: bytes, frame_length: int = L - OVERHEAD) -> bytes:
    return build_tm_frame(M.scid, M.tm_vcid, 5, 6, 0, data, 0x01000000, frame_length)


def _rover_secured(suite: str, data: bytes, seq_from: int = 0) -> bytes:
    fw = pytest.importorskip("firmware_py.sdls")
    sdls_frame = pytest.importorskip("firmware_py.sdls_frame")
    sec = fw.Security({3: (fw.SUITES[suite], KEY, 1)}, tm_spi=3)
    sec.tm_seq = sec.tm_mark = seq_from
    plain = b"\x1a\xcf\xfc\x1d" + _plain(data)
    out = bytearray(4 + L)
    n = sdls_frame.tm_secure(sec, plain, out)
    assert n == 4 + L
    return bytes(out[4:n])


@pytest.mark.parametrize("suite", ["aes-gcm", "gmac"])
@given(data=st.binary(min_size=L - OVERHEAD - 12, max_size=L - OVERHEAD - 12), seq=st.integers(0, 2**31))
def test_the_ground_opens_the_rovers_secured_tm_frames(suite: str, data: bytes, seq: int) -> None:
    frame = _rover_secured(suite, data, seq)
    header, field = frame[:6], frame[6:-6]
    keys = KeyStore(sas={3: SaConfig(3, Suite(suite), KEY)}, tm_spi=3)
    arsn, plain = open_tm(keys, header, field)
    assert (arsn, plain) == (seq + 1, data)
    # the layout, checked with cryptography alone: SPI | IV (ARSN) | data | MAC | OCF | FECF
    assert field[:2] == b"\x00\x03" and field[2:14] == bytes(8) + (seq + 1).to_bytes(4, "big")
    aad = bytes(h & m for h, m in zip(header, TM_MASK, strict=True)) + field[:2] + bytes(12)
    if suite == "aes-gcm":
        assert AESGCM(KEY).decrypt(field[2:14], field[14:], aad) == data
    else:
        assert field[14:-16] == data and AESGCM(KEY).decrypt(field[2:14], field[-16:], aad + data) == b""
    # the ground's own secure_tm makes the same octets
    assert secure_tm(keys.sas[3], header, seq + 1, data) == field


def test_the_ground_state_decodes_secured_tm_and_counts_forgeries() -> None:
    from protocols.pus import build_tm_packet

    mux = TmMultiplexer(M.scid, M.tm_vcid, L - OVERHEAD, clcw=0x01000000)
    mux.push(build_tm_packet(M.tm_apid, 1, 17, 2))  # a ping reply, then idle fill
    plain = mux.flush()[0]
    header, data = plain[:6], plain[6:-6]
    keys = KeyStore(sas={3: SaConfig(3, Suite.AES_GCM, KEY)}, tm_spi=3)
    state = GroundState(M)
    state.tm_security = lambda header, field: open_tm(keys, header, field)[1]
    field = secure_tm(keys.sas[3], header, 1, data)
    frame = header + field + (0x01000000).to_bytes(4, "big")
    frame += crc16(frame).to_bytes(2, "big")
    assert len(frame) == L
    state.on_frame(frame)
    assert (state.link.frames_ok, state.pings, state.link.tm_auth_failed) == (1, 1, 0)
    forged = bytearray(frame)
    forged[20] ^= 1
    forged[-2:] = crc16(bytes(forged[:-2])).to_bytes(2, "big")
    state.on_frame(bytes(forged))
    assert (state.link.frames_ok, state.pings, state.link.tm_auth_failed) == (1, 1, 1)
    with pytest.raises(AuthError):
        open_tm(keys, header, bytes(forged[6:-6]))
