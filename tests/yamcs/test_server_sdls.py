"""SDLS agrees both ways with Yamcs: Yamcs's own security association (AES-256-GCM, 128-bit
MAC, run from the Yamcs jars in its own process) opens the TC frames farside's ground builds,
and farside's rover opens the frames Yamcs seals, for random packets and ARSNs, under Yamcs's
standard authentication mask (what `farside yamcs init` configures: no custom authMask)."""

from __future__ import annotations

import random

import pytest

from firmware_py.sdls import AUTH_OK, SUITE_GCM, Security
from hil.gs.keys import DEV_KEYS
from protocols.crc import crc16
from protocols.errors import AuthError
from protocols.sdls import AuthReason, FrameAuthenticator, KeyStore, SecuritySender
from protocols.tc_frame import build_ad_frame
from tests.yamcs.conftest import yamcs_sdls

pytestmark = [pytest.mark.slow, pytest.mark.yamcs]

SCID, VCID, SPI = 171, 1, 1


def _cases(n: int, seed: int) -> list[tuple[int, int, bytes]]:
    rng = random.Random(seed)
    return [(rng.randrange(256), rng.randrange(1, 1 << 32), rng.randbytes(rng.randrange(8, 200))) for _ in range(n)]


def _store() -> KeyStore:
    return KeyStore.load(DEV_KEYS)


# A custom authMask that leaves the IV out of the AAD (the VCID and the SPI only): the AAD farside
# used before it followed Yamcs's standard mask. Under it neither side may verify the other's
# frames, or these tests could not tell the two masks apart.
MASK_WITHOUT_IV = "0000FC0000FFFF"


def _mask_request(mask: str | None) -> list[str]:
    return [f"mask {mask}"] if mask else []


def _farside_frames(mask: str | None) -> tuple[list[str], list[bytes]]:
    sa = _store().sa(SPI)
    assert sa is not None and sa.suite.value == "aes-gcm"
    requests, datas = _mask_request(mask), []
    for ns, arsn, data in _cases(20, 1):
        frame = build_ad_frame(SCID, VCID, ns, data, security=SecuritySender(sa, seq=arsn))
        requests.append(f"open {sa.key.hex()} {SPI} {frame[:-2].hex()}")
        datas.append(data)
    return requests, datas


def _yamcs_frames(mask: str | None) -> list[tuple[int, bytes, bytes]]:
    """(ARSN, data, whole frame with FECF) sealed by Yamcs under `mask`."""
    sa = _store().sa(SPI)
    assert sa is not None
    cases = _cases(20, 2)
    requests = _mask_request(mask)
    for ns, arsn, data in cases:
        length = 5 + 14 + len(data) + 16 + 2
        header = bytes([0x00 | (SCID >> 8), SCID & 0xFF, (VCID << 2) | ((length - 1) >> 8), (length - 1) & 0xFF, ns])
        requests.append(f"seal {sa.key.hex()} {SPI} {arsn} {header.hex()} {data.hex()}")
    answers = yamcs_sdls(requests)[len(_mask_request(mask)) :]
    out = []
    for (_ns, arsn, data), answer in zip(cases, answers, strict=True):
        body = bytes.fromhex(answer)
        out.append((arsn, data, body + crc16(body).to_bytes(2, "big")))
    return out


def test_a_mask_without_the_iv_verifies_neither_way(yamcs_tools: None) -> None:
    requests, _ = _farside_frames(MASK_WITHOUT_IV)
    answers = yamcs_sdls(requests)
    assert answers[0] == "ok" and all(a.startswith("MacVerificationFailure") for a in answers[1:])
    for _arsn, _data, frame in _yamcs_frames(MASK_WITHOUT_IV):
        with pytest.raises(AuthError) as err:
            FrameAuthenticator(_store()).verify(frame)
        assert err.value.reason == AuthReason.BAD_MAC


def test_yamcs_opens_the_tc_frames_farside_builds(yamcs_tools: None) -> None:
    requests, datas = _farside_frames(None)
    assert yamcs_sdls(requests) == [f"NoFailure {d.hex()}" for d in datas]


def test_farside_rover_opens_the_tc_frames_yamcs_seals(yamcs_tools: None) -> None:
    store = _store()
    sa = store.sa(SPI)
    assert sa is not None
    for arsn, data, frame in _yamcs_frames(None):
        # the ground's reference model of the rover
        verified = FrameAuthenticator(store).verify(frame)
        assert (verified.spi, verified.seq, verified.data) == (SPI, arsn, data)
        # the rover's own code (firmware_py on CPython)
        rover = Security({SPI: (SUITE_GCM, sa.key, 1)})
        buf = bytearray(frame)
        assert rover.verify(buf, len(buf)) == AUTH_OK
        assert bytes(buf[rover.data_start : rover.data_end]) == data


def _yamcs_rule_frame(key: bytes, ns: int, arsn: int, data: bytes) -> tuple[bytes, bytes]:
    """(header, frame without FECF) sealed by the rule Yamcs's code follows (the control)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    length = 5 + 14 + len(data) + 16 + 2
    header = bytes([SCID >> 8, SCID & 0xFF, (VCID << 2) | ((length - 1) >> 8), (length - 1) & 0xFF, ns])
    iv = arsn.to_bytes(12, "big")
    aad = bytes(a & m for a, m in zip(header, bytes.fromhex("0000FC0000"), strict=True)) + SPI.to_bytes(2, "big") + bytes(12)
    return header, header + SPI.to_bytes(2, "big") + iv + AESGCM(key).encrypt(iv, data, aad)


def test_yamcs_security_association_follows_the_standard_mask_over_header_spi_and_iv(yamcs_tools: None) -> None:
    """The control for the two tests above: Yamcs opens what the cryptography package seals
    with AAD = (header AND 00 00 FC 00 00) || SPI || 12 zero octets, seals exactly that, and
    refuses a frame whose VCID (under the mask) was changed."""
    sa = _store().sa(SPI)
    assert sa is not None
    cases = _cases(10, 3)
    frames = [_yamcs_rule_frame(sa.key, ns, arsn, data) for ns, arsn, data in cases]
    tampered = bytearray(frames[0][1])
    tampered[2] ^= 0x04  # VCID 1 -> 0
    requests = [f"open {sa.key.hex()} {SPI} {f.hex()}" for _, f in frames]
    requests += [f"seal {sa.key.hex()} {SPI} {arsn} {h.hex()} {data.hex()}"
                 for (h, _), (_, arsn, data) in zip(frames, cases, strict=True)]
    requests.append(f"open {sa.key.hex()} {SPI} {bytes(tampered).hex()}")
    answers = yamcs_sdls(requests)
    n = len(cases)
    assert answers[:n] == [f"NoFailure {data.hex()}" for _, _, data in cases]
    assert answers[n : 2 * n] == [f.hex() for _, f in frames]
    assert answers[-1].startswith("MacVerificationFailure")
