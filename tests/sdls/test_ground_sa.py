"""The ground's security associations against oracles the project did not write: the NIST
CAVP AES-256-GCM vectors, and frames built or checked by an independent `cryptography`
AESGCM call written here from the contract's layout (CCSDS 355.0-B-2, Yamcs'
SecurityAssociationAes256Gcm128)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from protocols import strategies as pst
from protocols.crc import crc16
from protocols.errors import AuthError
from protocols.sdls import (
    AuthReason,
    FrameAuthenticator,
    KeyStore,
    SaConfig,
    SecuritySender,
    Suite,
    gcm_decrypt,
    gcm_encrypt,
    unwrap_key,
    wrap_key,
)
from protocols.tc_frame import build_tc_frame, parse_tc_frame

# NIST CAVP, "GCM Test Vectors" (gcmtestvectors.zip), file gcmEncryptExtIV256.rsp,
# [Keylen = 256] [IVlen = 96] [Taglen = 128]: (section, key, iv, pt, aad, ct, tag).
CAVP = [
    ("PTlen=0 AADlen=0 Count=0",
     "b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4", "516c33929df5a3284ff463d7",
     "", "", "", "bdc1ac884d332457a1d2664f168c76f0"),
    ("PTlen=0 AADlen=0 Count=1",
     "5fe0861cdc2690ce69b3658c7f26f8458eec1c9243c5ba0845305d897e96ca0f", "770ac1a5a3d476d5d96944a1",
     "", "", "", "196d691e1047093ca4b3d2ef4baba216"),
    ("PTlen=0 AADlen=128 Count=0",
     "78dc4e0aaf52d935c3c01eea57428f00ca1fd475f5da86a49c8dd73d68c8e223", "d79cf22d504cc793c3fb6c8a",
     "", "b96baa8c1c75a671bfb2d08d06be5f36", "", "3e5d486aa2e30b22e040b85723a06e76"),
    ("PTlen=0 AADlen=128 Count=1",
     "4457ff33683cca6ca493878bdc00373893a9763412eef8cddb54f91318e0da88", "699d1f29d7b8c55300bb1fd2",
     "", "6749daeea367d0e9809e2dc2f309e6e3", "", "d60c74d2517fde4a74e0cd4709ed43a9"),
    ("PTlen=128 AADlen=0 Count=0",
     "31bdadd96698c204aa9ce1448ea94ae1fb4a9a0b3c9d773b51bb1822666b8f22", "0d18e06c7c725ac9e362e1ce",
     "2db5168e932556f8089a0622981d017d", "", "fa4362189661d163fcd6a56d8bf0405a", "d636ac1bbedd5cc3ee727dc2ab4a9489"),
    ("PTlen=104 AADlen=0 Count=3",
     "e5a0eb92cc2b064e1bc80891faf1fab5e9a17a9c3a984e25416720e30e6c2b21", "4742357c335913153ff0eb0f",
     "8499893e16b0ba8b007d54665a", "", "eb8e6175f1fe38eb1acf95fd51", "88a8b74bb74fda553e91020a23deed45"),
    ("PTlen=256 AADlen=0 Count=6",
     "37f39137416bafde6f75022a7a527cc593b6000a83ff51ec04871a0ff5360e4e", "a291484c3de8bec6b47f525f",
     "fafd94cede8b5a0730394bec68a8e77dba288d6ccaa8e1563a81d6e7ccc7fc97", "",
     "44dc868006b21d49284016565ffb3979cc4271d967628bf7cdaf86db888e92e5", "01a2b578aa2f41ec6379a44a31cc019c"),
    ("PTlen=128 AADlen=128 Count=0",
     "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b", "ac93a1a6145299bde902f21a",
     "2d71bcfa914e4ac045b2aa60955fad24", "1e0889016f67601c8ebea4943bc23ad6",
     "8995ae2e6df3dbf96fac7b7137bae67f", "eca5aa77d51d4a0a14d9c51e1da474ab"),
    ("PTlen=104 AADlen=160 Count=1",
     "97431e565e8370a4879de962746a2fd67eca868b1c8e51eece2c1f94f74af407", "17fb63066e2726d282ecc610",
     "e21629cc973fbe40176e621d9d", "78e7374da7c77be5938de8dd76cf0308618306a9",
     "80dbd469de480389ba6c2fca52", "4e284abb8b4f9f13c7497ae56df05fa5"),
    ("PTlen=408 AADlen=720 Count=2",
     "c277df045d0a1a3956958f271055c229d2634427b1d73e99d54920da69f72e01", "79e24f84bc77a21a6cb14ee2",
     "5ca68d858cc30b1cb0514c4e9de98e1a1a835df401f69e9ec6f1bcb1158f09114dff551683b3827457f77e17a7097b1ea69eac",
     "ca09282238d492029afbd30ea9b4aa9d448d77b4b41a791c35ebe3f8e5034ac71210117a843fae647cea020712c27e"
     "5c8f85acf933d5e28430c7770862d8dbb197cbbcfe49dd63f6aa05fbd13e32c459342698dfee5935c7c321",
     "5c5223c8eda59a8dc28b08e6c21482a46e5d84d32c7050bf144fc57f4e8094de133198da7b4b8398b167204aff837da15d9ab2",
     "378885950a4491bee3cd681d3c957b9a"),
]

MASK = bytes.fromhex("0000FC0000")
keys = st.binary(min_size=32, max_size=32)


@pytest.mark.parametrize(("section", "key", "iv", "pt", "aad", "ct", "tag"), CAVP, ids=[c[0] for c in CAVP])
def test_aes_gcm_reproduces_the_nist_cavp_vectors(section: str, key: str, iv: str, pt: str, aad: str,
                                                  ct: str, tag: str) -> None:
    k, n, p, a = (bytes.fromhex(x) for x in (key, iv, pt, aad))
    assert gcm_encrypt(k, n, p, a) == bytes.fromhex(ct + tag)
    assert gcm_decrypt(k, n, bytes.fromhex(ct + tag), a) == p
    bad = bytearray(bytes.fromhex(ct + tag))
    bad[-1] ^= 1
    assert gcm_decrypt(k, n, bytes(bad), a) is None


GMAC_CAVP = [c for c in CAVP if not c[3] and len(c[4]) >= 2 * 7]  # empty PT, AAD holds a header and SPI


@pytest.mark.parametrize("section", GMAC_CAVP, ids=[c[0] for c in GMAC_CAVP])
def test_the_gmac_suite_tag_is_the_gcm_tag_of_an_empty_plaintext(section: tuple[str, ...]) -> None:
    # the gmac suite's MAC is the GCM tag of an empty plaintext over AAD = header || SPI ||
    # the IV masked to 12 zero octets || data: with the vector's key, IV and AAD (split at
    # 5 + 2 octets), it is the tag AESGCM gives (AESGCM itself checked against CAVP above)
    _, key, iv, _, aad, _, tag = section
    a, k, n = bytes.fromhex(aad), bytes.fromhex(key), bytes.fromhex(iv)
    sa = SaConfig(int.from_bytes(a[5:7], "big"), Suite.GMAC, k)
    mask = b"\xff" * 5  # all of the header: the vector's AAD as is
    sec = a[5:7] + n
    want = AESGCM(k).encrypt(n, b"", a[:7] + bytes(12) + a[7:])
    assert sa.open(a[:5], mask, sec, a[7:], want) == a[7:]
    assert sa.open(a[:5], mask, sec, a[7:], bytes.fromhex(tag)) is None  # the IV's octets are in the AAD
    assert sa.open(a[:5], mask, sec, a[7:], bytes(16)) is None


def _independent_gcm_frame(key: bytes, spi: int, seq: int, bypass: bool, vcid: int, ns: int, data: bytes,
                           gmac: bool = False) -> bytes:
    """A secured TC frame built from the contract's layout with cryptography's AESGCM only."""
    total = 5 + 2 + 12 + len(data) + 16 + 2
    word0 = (int(bypass) << 13) | 171
    header = word0.to_bytes(2, "big") + ((vcid << 10) | (total - 1)).to_bytes(2, "big") + bytes([ns])
    iv = bytes(8) + seq.to_bytes(4, "big")
    aad = bytes(h & m for h, m in zip(header, MASK, strict=True)) + spi.to_bytes(2, "big") + bytes(12)
    if gmac:
        body = data + AESGCM(key).encrypt(iv, b"", aad + data)
    else:
        body = AESGCM(key).encrypt(iv, data, aad)
    frame = header + spi.to_bytes(2, "big") + iv + body
    return frame + crc16(frame).to_bytes(2, "big")


@given(pst.secured_tc_frame_args(), st.booleans())
def test_cryptography_decrypts_and_verifies_the_grounds_frames(args: dict, gmac: bool) -> None:
    key, spi, seq = args.pop("key"), args.pop("spi"), args.pop("seq")
    if len(args["data"]) > 1024 - 37:
        args["data"] = args["data"][: 1024 - 37]
    suite = Suite.GMAC if gmac else Suite.AES_GCM
    raw = build_tc_frame(**args, security=SecuritySender(key, spi, seq, suite))
    header, field = raw[:5], raw[5:-2]
    assert field[:2] == spi.to_bytes(2, "big") and field[2:14] == bytes(8) + seq.to_bytes(4, "big")
    aad = bytes(h & m for h, m in zip(header, MASK, strict=True)) + field[:2] + bytes(12)
    iv, body = field[2:14], field[14:]
    if gmac:
        assert body[:-16] == args["data"]
        assert AESGCM(key).decrypt(iv, body[-16:], aad + args["data"]) == b""
    else:
        assert AESGCM(key).decrypt(iv, body, aad) == args["data"]
    assert int.from_bytes(raw[2:4], "big") & 0x3FF == len(raw) - 1


@given(keys, st.integers(0, 0xFFFF), st.integers(1, 0xFFFFFFFF), st.booleans(), st.integers(0, 63),
       st.integers(0, 255), st.binary(max_size=200), st.booleans())
def test_the_ground_accepts_frames_cryptography_built(key: bytes, spi: int, seq: int, bypass: bool, vcid: int,
                                                      ns: int, data: bytes, gmac: bool) -> None:
    raw = _independent_gcm_frame(key, spi, seq, bypass, vcid, ns, data, gmac)
    suite = Suite.GMAC if gmac else Suite.AES_GCM
    auth = FrameAuthenticator(KeyStore(sas={spi: SaConfig(spi, suite, key)}))
    v = auth.verify(raw)
    assert (v.spi, v.seq, v.data, v.bypass) == (spi, seq, data, bypass)
    # the VCID is authenticated; N(S) and the length are not (the mask), the SPI and IV are
    other_vcid = bytearray(raw)
    other_vcid[2] ^= 0x04
    other_vcid[-2:] = crc16(bytes(other_vcid[:-2])).to_bytes(2, "big")
    with pytest.raises(AuthError) as exc:
        auth.verify(bytes(other_vcid))
    assert exc.value.reason == AuthReason.BAD_MAC
    other_ns = bytearray(raw)
    other_ns[4] ^= 0xFF
    other_ns[-2:] = crc16(bytes(other_ns[:-2])).to_bytes(2, "big")
    assert auth.verify(bytes(other_ns)).data == data
    other_iv = bytearray(raw)
    other_iv[18] ^= 1
    other_iv[-2:] = crc16(bytes(other_iv[:-2])).to_bytes(2, "big")
    with pytest.raises(AuthError) as exc:
        auth.verify(bytes(other_iv))
    assert exc.value.reason == AuthReason.BAD_MAC


def test_legacy_hmac_suite_keeps_its_layout() -> None:
    key = bytes(range(32))
    raw = build_tc_frame(171, 1, 0, b"abc", bypass=True, security=SecuritySender(key, 7, 5))
    header, sec = raw[:5], raw[5:11]
    assert sec == bytes.fromhex("000700000005")
    mac = hmac.new(key, header + sec + b"abc", hashlib.sha256).digest()[:16]
    assert raw[11:14] == b"abc" and raw[14:30] == mac
    auth = FrameAuthenticator(KeyStore.from_json({"keys": {"7": key.hex()}}))
    assert auth.verify(raw).data == b"abc"


def _frame(sa: SaConfig, seq: int, bypass: bool = False, data: bytes = b"\x01\x02") -> bytes:
    return build_tc_frame(171, 1, seq & 0xFF, data, bypass=bypass, security=SecuritySender(sa, seq=seq))


SA = SaConfig(1, Suite.AES_GCM, bytes(range(32)))


def _reason(auth: FrameAuthenticator, raw: bytes) -> AuthReason | None:
    try:
        auth.verify(raw)
    except AuthError as exc:
        return AuthReason(exc.reason)
    return None


def test_check_order_too_short_unknown_spi_mac_window_replay() -> None:
    auth = FrameAuthenticator(KeyStore(sas={1: SA}))
    short = build_tc_frame(171, 1, 0, bytes(10))
    assert _reason(auth, short) == AuthReason.NO_SECURITY_HEADER
    stranger = _frame(SaConfig(9, Suite.AES_GCM, bytes(32)), 5)
    assert _reason(auth, stranger) == AuthReason.UNKNOWN_SPI
    # SPI 1 known, but the data field is too short for its 30-octet overhead
    hmac_sized = build_tc_frame(171, 1, 0, b"", security=SecuritySender(bytes(32), 1, 3))
    assert _reason(auth, hmac_sized) == AuthReason.NO_SECURITY_HEADER
    forged = _frame(SaConfig(1, Suite.AES_GCM, bytes(32)), 5)
    assert _reason(auth, forged) == AuthReason.BAD_MAC
    auth.commit(1, 100)
    assert _reason(auth, _frame(SA, 36)) == AuthReason.OUT_OF_WINDOW
    assert _reason(auth, _frame(SA, 100)) == AuthReason.REPLAYED
    assert _reason(auth, _frame(SA, 99)) is None


def test_an_iv_above_2_32_is_out_of_window() -> None:
    auth = FrameAuthenticator(KeyStore(sas={1: SA}))
    raw = bytearray(_frame(SA, 5))
    # rebuild with IV[0:8] != 0 and a valid tag (an attacker with no key cannot, the ground never does)
    header = bytes(raw[:5])
    iv = bytes([0, 0, 0, 0, 0, 0, 0, 1]) + (5).to_bytes(4, "big")
    aad = bytes(h & m for h, m in zip(header, MASK, strict=True)) + b"\x00\x01" + bytes(12)
    frame = header + b"\x00\x01" + iv + AESGCM(SA.key).encrypt(iv, b"\x01\x02", aad)
    frame += crc16(frame).to_bytes(2, "big")
    assert _reason(auth, frame) == AuthReason.OUT_OF_WINDOW


def test_bd_frames_need_an_arsn_above_the_highest_accepted() -> None:
    auth = FrameAuthenticator(KeyStore(sas={1: SA}))
    auth.commit(1, 50)
    assert _reason(auth, _frame(SA, 40, bypass=False)) is None  # AD: inside the window
    assert _reason(auth, _frame(SA, 40, bypass=True)) == AuthReason.REPLAYED
    assert _reason(auth, _frame(SA, 50, bypass=True)) == AuthReason.REPLAYED
    assert _reason(auth, _frame(SA, 51, bypass=True)) is None


@given(st.lists(st.integers(1, 2000), min_size=1, max_size=40), st.integers(1, 2000), st.booleans())
def test_after_a_reset_nothing_at_or_below_the_persisted_mark_passes(accepted: list[int], replay: int,
                                                                     bypass: bool) -> None:
    marks: dict[int, int] = {}
    before = FrameAuthenticator(KeyStore(sas={1: SA}), persist=lambda spi, m: marks.__setitem__(spi, m))
    for seq in accepted:
        if _reason(before, _frame(SA, seq)) is None:
            before.commit(1, seq)
            assert marks[1] >= seq  # persisted before the frame is acted on
    after = FrameAuthenticator(KeyStore(sas={1: SA}), marks=marks)
    reason = _reason(after, _frame(SA, replay, bypass))
    if replay <= marks[1]:
        assert reason in (AuthReason.REPLAYED, AuthReason.OUT_OF_WINDOW)
    else:
        assert reason is None


def test_otar_wraps_the_new_key_under_the_master_key() -> None:
    master, new = bytes(range(32)), bytes(range(32, 64))
    iv = bytes(range(12))
    wrapped, mac = wrap_key(master, 2, new, iv)
    assert AESGCM(master).decrypt(iv, wrapped + mac, (2).to_bytes(2, "big")) == new
    assert unwrap_key(master, 2, iv, wrapped, mac) == new
    assert unwrap_key(master, 3, iv, wrapped, mac) is None  # the key_id is authenticated
    assert unwrap_key(bytes(32), 2, iv, wrapped, mac) is None


def test_parse_splits_per_sa_and_returns_the_plaintext() -> None:
    auth = FrameAuthenticator(KeyStore(sas={1: SA}))
    raw = _frame(SA, 9, data=b"hello")
    f = parse_tc_frame(raw, security=auth)
    assert (f.spi, f.sec_seq, f.data, f.iv) == (1, 9, b"hello", bytes(8) + (9).to_bytes(4, "big"))
    assert parse_tc_frame(raw, security=14).data != b"hello"  # split, not decrypted
