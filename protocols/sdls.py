"""Space Data Link Security for TC (and optionally TM) frames: CCSDS 355.0-B-2, algorithms
per CCSDS 352.0-B.

Security associations (SAs) by SPI, each with one suite:

- ``aes-gcm`` (the default): authenticated encryption, AES-256-GCM with a 128-bit MAC, laid
  out as Yamcs' ``SecurityAssociationAes256Gcm128``::

      TC header(5) | SPI u16 | IV(12) | ciphertext | MAC(16) | FECF(2)

  IV = the anti-replay sequence number (ARSN) as a 96-bit big-endian counter: IV[0:8] = 0,
  IV[8:12] = the 32-bit ARSN (an IV whose first 8 octets are not zero is OUT_OF_WINDOW).
  AAD = (TC header AND the authentication mask ``00 00 FC 00 00``: only the VCID) || (the
  security header AND its mask ``FF FF`` + 12 x ``00``: the SPI, the IV zeroed), as CCSDS
  355.0-B-2 masks it and Yamcs's SecurityAssociationAes256Gcm128 computes it;
  the IV is authenticated as the GCM nonce. Plaintext = the frame data field.
- ``gmac``: authentication only, same layout with the data field in the clear and the MAC =
  the GCM tag over empty plaintext with AAD = masked header || SPI || 12 x 00 || data.
- ``hmac-sha256`` (legacy, the golden vectors in the architecture notes)::

      TC header(5) | SPI u16 | ARSN u32 | data | MAC(16) | FECF(2)

  MAC = HMAC-SHA256(key, header + SPI + ARSN + data)[:16].

Key file (JSON)::

    {"sas": {"1": {"suite": "aes-gcm", "key": "<64 hex>", "key_id": 1}},
     "master": "<64 hex>", "tm_spi": 0}

The old form ``{"keys": {"1": "<hex>"}}`` still loads, as hmac-sha256 SAs; a raw key given
in code (``KeyStore({1: key})``, ``SecuritySender(key)``) is hmac-sha256 too unless a suite is
named.

Anti-replay per SPI, IPsec style (RFC 4303 3.4.3): the highest accepted ARSN H and a 64-bit
bitmap. Checks in this order: frame too short -> NO_SECURITY_HEADER; SPI without an SA ->
UNKNOWN_SPI; MAC mismatch -> BAD_MAC; ARSN <= H - 64 (or IV[0:8] != 0) -> OUT_OF_WINDOW;
already accepted -> REPLAYED. Type-BD frames (bypass flag set) need ARSN > H. Verification
never changes the window: the receiver commits the ARSN once FARM-1 (AD) or the BD path has
accepted the frame. `FrameAuthenticator` is the rover's reference model, including the
persisted mark M (every accepted ARSN <= M before it is acted on; reserve ``MARK_RESERVE``
ahead; at boot H := M with the window full).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocols.errors import AuthError, ProtocolError
from protocols.tc_frame import (
    FECF_LENGTH,
    MAC_LENGTH,
    PRIMARY_HEADER_LENGTH,
    TcFrame,
    parse_tc_frame,
)

KEY_LENGTH = 32
IV_LENGTH = 12
REPLAY_WINDOW = 64
DEFAULT_SPI = 1
MAX_SEQ = 0xFFFFFFFF
MARK_RESERVE = 256  # the rover persists M = ARSN + MARK_RESERVE - 1 when an ARSN passes M
EXHAUSTION_WARNING = MAX_SEQ + 1 - (1 << 16)  # the ground warns from this ARSN on
REKEY_RESERVE = 16  # the last ARSNs before 2**32 are kept for KEY_OTAR / SA_REKEY
TC_AUTH_MASK = bytes.fromhex("0000FC0000")  # 355.0-B-2: only the VCID of the TC header
TM_AUTH_MASK = bytes.fromhex("000E00000000")  # only the VCID of the TM header
IV_MASKED = bytes(12)  # the security header's mask authenticates the SPI only: the IV is zeroed
TM_HEADER_LENGTH = 6


class AuthReason(IntEnum):
    """Why a frame was rejected (dictionary enum "auth_reason")."""

    UNKNOWN_SPI = 1
    BAD_MAC = 2
    REPLAYED = 3
    OUT_OF_WINDOW = 4
    NO_SECURITY_HEADER = 5


class Suite(str, Enum):
    """The cryptographic suite of a security association."""

    AES_GCM = "aes-gcm"
    GMAC = "gmac"
    HMAC_SHA256 = "hmac-sha256"

    @property
    def header_length(self) -> int:
        """Security header octets: SPI + IV (GCM suites) or SPI + ARSN (legacy)."""
        return 2 + (4 if self is Suite.HMAC_SHA256 else IV_LENGTH)

    @property
    def overhead(self) -> int:
        """Security header plus MAC trailer."""
        return self.header_length + MAC_LENGTH


MIN_OVERHEAD = min(s.overhead for s in Suite)


def compute_mac(key: bytes, mac_input: bytes) -> bytes:
    """HMAC-SHA256 truncated to 16 octets (the legacy suite)."""
    return hmac.new(key, mac_input, hashlib.sha256).digest()[:MAC_LENGTH]


def gcm_encrypt(key: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM (NIST SP 800-38D) with a 96-bit IV and a 128-bit tag: ciphertext || tag."""
    return AESGCM(key).encrypt(iv, plaintext, aad)


def gcm_decrypt(key: bytes, iv: bytes, ciphertext_and_tag: bytes, aad: bytes) -> bytes | None:
    """The plaintext, or None when the tag does not verify."""
    try:
        return AESGCM(key).decrypt(iv, ciphertext_and_tag, aad)
    except InvalidTag:
        return None


def arsn_iv(seq: int) -> bytes:
    """The 12-octet IV carrying a 32-bit ARSN: 8 zero octets, then the ARSN big-endian."""
    return bytes(8) + seq.to_bytes(4, "big")


def masked(header: bytes, mask: bytes) -> bytes:
    """The header AND the authentication mask."""
    return bytes(h & m for h, m in zip(header, mask, strict=True))


def _check_key(key: bytes, what: str) -> bytes:
    if len(key) != KEY_LENGTH:
        raise ProtocolError(f"{what} must be {KEY_LENGTH} octets, got {len(key)}")
    return bytes(key)


@dataclass(frozen=True)
class SaConfig:
    """One security association as configured: SPI, suite, key and its id."""

    spi: int
    suite: Suite
    key: bytes
    key_id: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.spi <= 0xFFFF:
            raise ProtocolError(f"SPI must be 0..65535, got {self.spi}")
        if not 0 <= self.key_id <= 0xFFFF:
            raise ProtocolError(f"key_id must be 0..65535, got {self.key_id}")
        _check_key(self.key, f"key for SPI {self.spi}")

    @cached_property
    def aead(self) -> AESGCM:
        """The key's AES-GCM context, made once (its key schedule)."""
        return AESGCM(self.key)

    # --- the suite's transforms (no state) -------------------------------------------
    def seal(self, header: bytes, mask: bytes, seq: int, data: bytes) -> bytes:
        """Security header + data (encrypted for aes-gcm) + MAC for a frame whose header
        (carrying its final length) is `header`."""
        spi = self.spi.to_bytes(2, "big")
        if self.suite is Suite.HMAC_SHA256:
            sec = spi + seq.to_bytes(4, "big")
            return sec + data + compute_mac(self.key, header + sec + data)
        iv = arsn_iv(seq)
        aad = masked(header, mask) + spi + IV_MASKED
        if self.suite is Suite.AES_GCM:
            return spi + iv + self.aead.encrypt(iv, data, aad)
        return spi + iv + data + self.aead.encrypt(iv, b"", aad + data)

    def open(self, header: bytes, mask: bytes, sec: bytes, body: bytes, mac: bytes) -> bytes | None:
        """The plaintext data field if the MAC verifies, else None."""
        if self.suite is Suite.HMAC_SHA256:
            ok = hmac.compare_digest(compute_mac(self.key, header + sec + body), mac)
            return body if ok else None
        iv, aad = sec[2:], masked(header, mask) + sec[:2] + IV_MASKED
        try:
            if self.suite is Suite.AES_GCM:
                return self.aead.decrypt(iv, body + mac, aad)
            self.aead.decrypt(iv, mac, aad + body)
            return body
        except InvalidTag:
            return None

    def to_json(self) -> dict[str, Any]:
        return {"suite": self.suite.value, "key": self.key.hex(), "key_id": self.key_id}


def seq_of(sec: bytes) -> tuple[int, bool]:
    """(ARSN, in range) from a security header: False when a GCM IV's first 8 octets are set."""
    if len(sec) == 6:
        return int.from_bytes(sec[2:6], "big"), True
    iv = sec[2:]
    return int.from_bytes(iv, "big"), not any(iv[:8])


class KeyStore:
    """The key file: SAs by SPI, the OTAR master key and the TM SPI (0 = TM not secured)."""

    def __init__(
        self,
        keys: dict[int, bytes] | None = None,
        *,
        sas: dict[int, SaConfig] | None = None,
        master: bytes | None = None,
        tm_spi: int = 0,
    ) -> None:
        self.sas: dict[int, SaConfig] = dict(sas or {})
        for spi, key in (keys or {}).items():
            self.add(spi, key)
        self.master = None if master is None else _check_key(master, "master key")
        self.tm_spi = tm_spi

    def add(self, spi: int, key: bytes, suite: Suite | str = Suite.HMAC_SHA256, key_id: int = 1) -> SaConfig:
        sa = self.sas[spi] = SaConfig(spi, Suite(suite), bytes(key), key_id)
        return sa

    def sa(self, spi: int) -> SaConfig | None:
        return self.sas.get(spi)

    def get(self, spi: int) -> bytes | None:
        sa = self.sas.get(spi)
        return None if sa is None else sa.key

    @property
    def keys(self) -> dict[int, bytes]:
        return {spi: sa.key for spi, sa in self.sas.items()}

    def __contains__(self, spi: object) -> bool:
        return spi in self.sas

    def __len__(self) -> int:
        return len(self.sas)

    @classmethod
    def from_json(cls, obj: Any, source: str = "key file") -> KeyStore:
        """From the parsed key file (the "sas" form or the old "keys" form)."""
        if not isinstance(obj, dict) or not (isinstance(obj.get("sas"), dict) or isinstance(obj.get("keys"), dict)):
            raise ProtocolError(
                f'{source}: expected an object {{"sas": {{"<spi>": {{"suite": ..., "key": "<hex>", "key_id": 1}}}}}}'
            )
        store = cls()
        legacy = not isinstance(obj.get("sas"), dict)
        entries = obj["keys"] if legacy else obj["sas"]
        for name, entry in entries.items():
            try:
                spi = int(name)
            except ValueError:
                raise ProtocolError(f"{source}: SPI {name!r} is not an integer") from None
            if legacy:
                entry = {"suite": Suite.HMAC_SHA256.value, "key": entry, "key_id": 1}
            if not isinstance(entry, dict):
                raise ProtocolError(f"{source}: SA {spi} must be an object with suite, key and key_id")
            suite_name = entry.get("suite", Suite.AES_GCM.value)
            try:
                suite = Suite(suite_name)
            except ValueError:
                names = ", ".join(s.value for s in Suite)
                raise ProtocolError(f"{source}: SA {spi} suite {suite_name!r} is not one of {names}") from None
            key = _hex_key(entry.get("key"), f"{source}: key for SPI {spi}")
            key_id = entry.get("key_id", 1)
            if not isinstance(key_id, int) or isinstance(key_id, bool):
                raise ProtocolError(f"{source}: SA {spi} key_id must be an integer")
            try:
                store.add(spi, key, suite, key_id)
            except ProtocolError as exc:
                raise ProtocolError(f"{source}: {exc}") from None
        if not store.sas:
            raise ProtocolError(f"{source}: no keys")
        if obj.get("master") is not None:
            store.master = _hex_key(obj["master"], f"{source}: master key")
        tm_spi = obj.get("tm_spi", 0)
        if not isinstance(tm_spi, int) or (tm_spi and tm_spi not in store.sas):
            raise ProtocolError(f"{source}: tm_spi {tm_spi!r} names no SA")
        if tm_spi and store.sas[tm_spi].suite is Suite.HMAC_SHA256:
            raise ProtocolError(f"{source}: tm_spi {tm_spi} must be a gmac or aes-gcm SA")
        store.tm_spi = tm_spi
        return store

    @classmethod
    def load(cls, path: str | Path) -> KeyStore:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ProtocolError(f"cannot read key file {path}: {exc.strerror or exc}") from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProtocolError(f"key file {path} is not JSON: {exc.msg} at line {exc.lineno}") from None
        return cls.from_json(obj, source=f"key file {path}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sas": {str(spi): sa.to_json() for spi, sa in sorted(self.sas.items())}}
        if self.master is not None:
            out["master"] = self.master.hex()
        out["tm_spi"] = self.tm_spi
        return out


def _hex_key(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ProtocolError(f"{what} must be a hex string")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ProtocolError(f"{what} is not valid hex") from None
    if len(key) != KEY_LENGTH:
        raise ProtocolError(f"{what} must be {KEY_LENGTH} octets ({2 * KEY_LENGTH} hex digits), got {len(key)}")
    return key


@dataclass
class AntiReplay:
    """IPsec-style sliding window: `highest` accepted seq and a bitmap (bit i = highest - i)."""

    window: int = REPLAY_WINDOW
    highest: int = 0
    bitmap: int = 0

    def check(self, seq: int, bypass: bool = False) -> AuthReason | None:
        """Why `seq` must be rejected, or None; never changes the window. A BD frame
        (`bypass`) needs seq > highest."""
        if seq > self.highest:
            return None
        diff = self.highest - seq
        if diff >= self.window:
            return AuthReason.OUT_OF_WINDOW
        if bypass or (self.bitmap >> diff) & 1:
            return AuthReason.REPLAYED
        return None

    def commit(self, seq: int) -> None:
        """Record `seq` as accepted."""
        mask = (1 << self.window) - 1
        if seq > self.highest:
            shift = seq - self.highest
            self.bitmap = ((self.bitmap << shift) | 1) & mask if shift < self.window else 1
            self.highest = seq
        else:
            diff = self.highest - seq
            if diff < self.window:
                self.bitmap |= 1 << diff

    def restore(self, mark: int) -> None:
        """After a reset: H := mark, the whole window marked (nothing at or below it passes)."""
        self.highest = mark
        self.bitmap = (1 << self.window) - 1


@dataclass
class SecurityAssociation:
    """One SPI on the receiving side: its configuration, window and persisted mark."""

    config: SaConfig
    replay: AntiReplay = field(default_factory=AntiReplay)
    mark: int = 0

    @property
    def spi(self) -> int:
        return self.config.spi

    @property
    def key(self) -> bytes:
        return self.config.key


class SecuritySender:
    """Ground side of one SA: adds the security header and MAC (and encrypts for aes-gcm).

    `seq` is the next ARSN (+1 per new frame). With `reserve` (a persisted ledger:
    seq -> (first, last) of a block at or above seq) the sender takes a new block before it
    uses an ARSN above `limit` and jumps to its first ARSN, so no two senders on one key ever
    reuse an IV."""

    def __init__(
        self,
        key: bytes | SaConfig,
        spi: int = DEFAULT_SPI,
        seq: int = 1,
        suite: Suite | str = Suite.HMAC_SHA256,
        *,
        key_id: int = 1,
        reserve: Callable[[int], tuple[int, int]] | None = None,
        mask: bytes = TC_AUTH_MASK,
    ) -> None:
        self.sa = key if isinstance(key, SaConfig) else SaConfig(spi, Suite(suite), _check_key(key, "key"), key_id)
        self.seq = seq
        self.reserve = reserve
        self.limit = MAX_SEQ if reserve is None else 0
        self.mask = mask

    @property
    def spi(self) -> int:
        return self.sa.spi

    @property
    def key(self) -> bytes:
        return self.sa.key

    @property
    def suite(self) -> Suite:
        return self.sa.suite

    @property
    def overhead(self) -> int:
        return self.sa.suite.overhead

    @classmethod
    def from_keystore(
        cls, keys: KeyStore, spi: int = DEFAULT_SPI, seq: int = 1, reserve: Callable[[int], tuple[int, int]] | None = None
    ) -> SecuritySender:
        sa = keys.sa(spi)
        if sa is None:
            raise ProtocolError(f"no key for SPI {spi} in the key store")
        return cls(sa, seq=seq, reserve=reserve)

    def advance_to(self, seq: int) -> None:
        """Never go backwards: the next ARSN becomes max(next, seq)."""
        self.seq = max(self.seq, seq)

    def rekey(self, sa: SaConfig, seq: int = 1) -> None:
        """Switch to a new key (after SA_REKEY): the ARSN restarts."""
        self.sa = sa
        self.seq = seq
        self.limit = MAX_SEQ if self.reserve is None else 0

    @property
    def exhausting(self) -> bool:
        """The ARSN is close to 2**32: rekey now."""
        return self.seq >= EXHAUSTION_WARNING

    def next_seq(self) -> int:
        """Take the next ARSN (reserving a new block first when needed)."""
        seq = self.seq
        if seq > MAX_SEQ:
            raise ProtocolError(f"SPI {self.spi}: security sequence number exhausted (2**32): rekey")
        if seq > self.limit and self.reserve is not None:
            first, self.limit = self.reserve(seq)
            if not seq <= first <= self.limit:
                raise ProtocolError(f"SPI {self.spi}: could not reserve ARSN {seq}")
            seq = first
        self.seq = seq + 1
        return seq

    def secure(self, header: bytes, data: bytes) -> bytes:
        return self.sa.seal(header, self.mask, self.next_seq(), bytes(data))


def apply_security(frame: bytes, sender: SecuritySender) -> bytes:
    """Secure an already built plain TC frame: same header fields, new length, MAC and FECF."""
    from protocols.tc_frame import build_tc_frame

    plain = parse_tc_frame(frame)
    return build_tc_frame(plain.scid, plain.vcid, plain.frame_seq, plain.data, plain.bypass, plain.control, sender)


@dataclass(frozen=True)
class Verified:
    """A frame that passed authentication (not yet committed); `data` is the plaintext."""

    spi: int
    seq: int
    data: bytes
    bypass: bool = False


class FrameAuthenticator:
    """Rover side (and the ground's reference model): verify, then commit.

    `persist(spi, mark)` is called before a commit raises an SA's mark; `marks` restores the
    marks at construction (a boot), so nothing at or below them is accepted."""

    def __init__(
        self,
        keys: KeyStore,
        window: int = REPLAY_WINDOW,
        *,
        marks: dict[int, int] | None = None,
        persist: Callable[[int, int], None] | None = None,
    ) -> None:
        self.keys = keys
        self.window = window
        self.persist = persist
        self.marks: dict[int, int] = dict(marks or {})
        self.associations: dict[int, SecurityAssociation] = {}

    def association(self, spi: int) -> SecurityAssociation | None:
        sa = self.associations.get(spi)
        if sa is None:
            config = self.keys.sa(spi)
            if config is None:
                return None
            sa = self.associations[spi] = SecurityAssociation(config, AntiReplay(self.window))
            mark = self.marks.get(spi, 0)
            if mark:
                sa.mark = mark
                sa.replay.restore(mark)
        return sa

    def reboot(self) -> None:
        """A reset: the windows are lost, the persisted marks restore them."""
        self.associations.clear()

    def split(self, spi: int) -> int | None:
        """Security header length of an SPI (for parse_tc_frame), None if unknown."""
        sa = self.keys.sa(spi)
        return None if sa is None else sa.suite.header_length

    def check(self, frame: TcFrame) -> bytes | None:
        """For parse_tc_frame(..., security=authenticator): raise AuthError (reason in the
        order of the module docstring), change nothing; return the plaintext."""
        assert frame.spi is not None and frame.security_header is not None and frame.mac is not None
        spi = frame.spi
        sa = self.association(spi)
        if sa is None:
            raise AuthError(AuthReason.UNKNOWN_SPI, f"no key for SPI {spi} (octets 5-6)", spi, 0)
        seq, in_range = seq_of(frame.security_header)
        plain = sa.config.open(frame.raw[:PRIMARY_HEADER_LENGTH], TC_AUTH_MASK, frame.security_header, frame.body, frame.mac)
        if plain is None:
            raise AuthError(AuthReason.BAD_MAC, f"MAC mismatch for SPI {spi} seq {seq}", spi, seq & MAX_SEQ)
        if not in_range:
            raise AuthError(AuthReason.OUT_OF_WINDOW, f"IV {frame.security_header[2:].hex()} is above 2**32", spi, 0)
        reason = sa.replay.check(seq, frame.bypass)
        if reason is AuthReason.OUT_OF_WINDOW:
            raise AuthError(
                reason, f"seq {seq} is outside the window (highest accepted {sa.replay.highest})", spi, seq
            )
        if reason is AuthReason.REPLAYED:
            why = "is not above the highest accepted" if frame.bypass else "was already accepted"
            raise AuthError(reason, f"seq {seq} {why} on SPI {spi}", spi, seq)
        return plain

    def verify(self, frame: bytes) -> Verified:
        """Verify a whole TC frame (FECF checked too); raises AuthError or ProtocolError."""
        raw = bytes(frame)
        if len(raw) < PRIMARY_HEADER_LENGTH + MIN_OVERHEAD + FECF_LENGTH:
            raise AuthError(
                AuthReason.NO_SECURITY_HEADER,
                f"TC frame of {len(raw)} octets is too short for the security header and MAC",
            )
        parsed = parse_tc_frame(raw, security=self)
        assert parsed.spi is not None and parsed.sec_seq is not None
        return Verified(parsed.spi, parsed.sec_seq, parsed.data, parsed.bypass)

    def commit(self, spi: int, seq: int) -> None:
        """Record `seq` as accepted on `spi` (call once FARM-1 or the BD path accepted the
        frame); the mark is raised (and persisted) first when seq passes it."""
        sa = self.association(spi)
        if sa is None:
            raise ProtocolError(f"cannot commit on SPI {spi}: no key")
        if seq > sa.mark:
            sa.mark = self.marks[spi] = min(MAX_SEQ, seq + MARK_RESERVE - 1)
            if self.persist is not None:
                self.persist(spi, sa.mark)
        sa.replay.commit(seq)

    def rekey(self, config: SaConfig) -> None:
        """SA_REKEY: the SA switches key, its ARSN state restarts at 0."""
        self.keys.sas[config.spi] = config
        self.marks[config.spi] = 0
        self.associations.pop(config.spi, None)
        if self.persist is not None:
            self.persist(config.spi, 0)


def with_plaintext(frame: TcFrame, plain: bytes) -> TcFrame:
    return replace(frame, data=plain)


# --- OTAR (in the spirit of CCSDS 355.1-B) -------------------------------------------------
def wrap_key(master: bytes, key_id: int, new_key: bytes, iv: bytes) -> tuple[bytes, bytes]:
    """(wrapped 32 octets, MAC 16 octets): the new key under the master key, AAD = key_id u16."""
    out = gcm_encrypt(_check_key(master, "master key"), iv, _check_key(new_key, "new key"), key_id.to_bytes(2, "big"))
    return out[:KEY_LENGTH], out[KEY_LENGTH:]


def unwrap_key(master: bytes, key_id: int, iv: bytes, wrapped: bytes, mac: bytes) -> bytes | None:
    """The new key, or None when the MAC does not verify (OTAR_BAD_MAC)."""
    return gcm_decrypt(master, iv, wrapped + mac, key_id.to_bytes(2, "big"))


# --- TM authentication (optional) ------------------------------------------------------------
def secure_tm(sa: SaConfig, header: bytes, seq: int, data: bytes) -> bytes:
    """SPI | IV | data (encrypted for aes-gcm) | MAC for a TM frame whose 6-octet header is
    `header` (the OCF and FECF follow)."""
    return sa.seal(header, TM_AUTH_MASK, seq, data)


def open_tm(keys: KeyStore, header: bytes, field_octets: bytes) -> tuple[int, bytes]:
    """(ARSN, data) of a secured TM data field (SPI | IV | data | MAC); AuthError if it fails."""
    if len(field_octets) < 2 + IV_LENGTH + MAC_LENGTH:
        raise AuthError(AuthReason.NO_SECURITY_HEADER, f"TM data field of {len(field_octets)} octets has no security header")
    spi = int.from_bytes(field_octets[:2], "big")
    sa = keys.sa(spi)
    if sa is None or sa.suite is Suite.HMAC_SHA256:
        raise AuthError(AuthReason.UNKNOWN_SPI, f"no TM SA for SPI {spi}", spi)
    sec = field_octets[: sa.suite.header_length]
    plain = sa.open(header, TM_AUTH_MASK, sec, field_octets[len(sec) : -MAC_LENGTH], field_octets[-MAC_LENGTH:])
    seq, _ = seq_of(sec)
    if plain is None:
        raise AuthError(AuthReason.BAD_MAC, f"TM MAC mismatch for SPI {spi} seq {seq}", spi, seq & MAX_SEQ)
    return seq, plain
