"""Authentication of TC frames in the style of SDLS (CCSDS 355.0-B-2 Space Data Link
Security, authentication-only service).

Frame layout: TC header(5) | SPI u16 | sequence number u32 | data | MAC(16) | FECF(2).
MAC = HMAC-SHA256(key, header(5) + SPI + sequence number + data)[:16], the header carrying
its real frame length. Keys by SPI from a JSON key file {"keys": {"1": "<64 hex digits>"}}.

Anti-replay per SPI, IPsec style (RFC 4303 3.4.3): the highest accepted sequence number H and
a 64-bit bitmap of the numbers at and below H already accepted. Checks in this order:
frame too short -> NO_SECURITY_HEADER; SPI without a key -> UNKNOWN_SPI; MAC mismatch ->
BAD_MAC; seq <= H - 64 -> OUT_OF_WINDOW; seq already marked -> REPLAYED. Verification never
changes the window: the receiver commits the sequence number only once FARM-1 has accepted the
frame (verify, then commit), so a COP-1 retransmission of a frame FARM discarded is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from protocols.errors import AuthError, ProtocolError
from protocols.tc_frame import (
    FECF_LENGTH,
    MAC_LENGTH,
    PRIMARY_HEADER_LENGTH,
    SECURITY_OVERHEAD,
    TcFrame,
    parse_tc_frame,
    tc_security_header,
)

KEY_LENGTH = 32
REPLAY_WINDOW = 64
DEFAULT_SPI = 1
MAX_SEQ = 0xFFFFFFFF


class AuthReason(IntEnum):
    """Why a frame was rejected (dictionary enum "auth_reason")."""

    UNKNOWN_SPI = 1
    BAD_MAC = 2
    REPLAYED = 3
    OUT_OF_WINDOW = 4
    NO_SECURITY_HEADER = 5


def compute_mac(key: bytes, mac_input: bytes) -> bytes:
    """HMAC-SHA256 truncated to 16 octets."""
    return hmac.new(key, mac_input, hashlib.sha256).digest()[:MAC_LENGTH]


class KeyStore:
    """Keys by SPI (32 octets each)."""

    def __init__(self, keys: dict[int, bytes] | None = None) -> None:
        self.keys: dict[int, bytes] = {}
        for spi, key in (keys or {}).items():
            self.add(spi, key)

    def add(self, spi: int, key: bytes) -> None:
        if not 0 <= spi <= 0xFFFF:
            raise ProtocolError(f"SPI must be 0..65535, got {spi}")
        if len(key) != KEY_LENGTH:
            raise ProtocolError(f"key for SPI {spi} must be {KEY_LENGTH} octets, got {len(key)}")
        self.keys[spi] = bytes(key)

    def get(self, spi: int) -> bytes | None:
        return self.keys.get(spi)

    def __contains__(self, spi: object) -> bool:
        return spi in self.keys

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_json(cls, obj: Any, source: str = "key file") -> KeyStore:
        """From the parsed key file {"keys": {"1": "<hex>"}}."""
        if not isinstance(obj, dict) or not isinstance(obj.get("keys"), dict):
            raise ProtocolError(f'{source}: expected an object {{"keys": {{"<spi>": "<hex>"}}}}')
        store = cls()
        for name, text in obj["keys"].items():
            try:
                spi = int(name)
            except ValueError:
                raise ProtocolError(f"{source}: SPI {name!r} is not an integer") from None
            if not isinstance(text, str):
                raise ProtocolError(f"{source}: key for SPI {spi} must be a hex string")
            try:
                key = bytes.fromhex(text)
            except ValueError:
                raise ProtocolError(f"{source}: key for SPI {spi} is not valid hex") from None
            if len(key) != KEY_LENGTH:
                raise ProtocolError(
                    f"{source}: key for SPI {spi} must be {KEY_LENGTH} octets "
                    f"({2 * KEY_LENGTH} hex digits), got {len(key)}"
                )
            store.add(spi, key)
        if not store.keys:
            raise ProtocolError(f"{source}: no keys")
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

    def to_json(self) -> dict[str, dict[str, str]]:
        return {"keys": {str(spi): key.hex() for spi, key in sorted(self.keys.items())}}


@dataclass
class AntiReplay:
    """IPsec-style sliding window: `highest` accepted seq and a bitmap (bit i = highest - i)."""

    window: int = REPLAY_WINDOW
    highest: int = 0
    bitmap: int = 0

    def check(self, seq: int) -> AuthReason | None:
        """Why `seq` must be rejected, or None; never changes the window."""
        if seq > self.highest:
            return None
        diff = self.highest - seq
        if diff >= self.window:
            return AuthReason.OUT_OF_WINDOW
        if (self.bitmap >> diff) & 1:
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


@dataclass
class SecurityAssociation:
    """One SPI: its key and its anti-replay window."""

    spi: int
    key: bytes
    replay: AntiReplay = field(default_factory=AntiReplay)


class SecuritySender:
    """Ground side: adds the security header and MAC; seq starts at 1, +1 per new frame."""

    def __init__(self, key: bytes, spi: int = DEFAULT_SPI, seq: int = 1) -> None:
        if len(key) != KEY_LENGTH:
            raise ProtocolError(f"key must be {KEY_LENGTH} octets, got {len(key)}")
        self.key = bytes(key)
        self.spi = spi
        self.seq = seq

    @classmethod
    def from_keystore(cls, keys: KeyStore, spi: int = DEFAULT_SPI, seq: int = 1) -> SecuritySender:
        key = keys.get(spi)
        if key is None:
            raise ProtocolError(f"no key for SPI {spi} in the key store")
        return cls(key, spi, seq)

    def secure(self, header: bytes, data: bytes) -> bytes:
        if self.seq > MAX_SEQ:
            raise ProtocolError("security sequence number exhausted (2**32): rekey")
        sec = bytes(tc_security_header.build({"security_parameter_index": self.spi, "sequence_number": self.seq}))
        self.seq += 1
        return sec + data + compute_mac(self.key, header + sec + data)


def time_based_seq(now_s: float | None = None) -> int:
    """A starting security sequence number for a new ground session: tenths of a second
    of Unix time (31 bits, so it wraps about every 6.8 years).

    The rover keeps its anti-replay window for as long as it runs, so every sender (ground
    station, flash tool, HIL harness) starts from this common clock to stay above any
    sequence number an earlier session used."""
    t = time.time() if now_s is None else now_s
    return max(1, int(t * 10) & 0x7FFFFFFF)


def apply_security(frame: bytes, sender: SecuritySender) -> bytes:
    """Secure an already built plain TC frame: same header fields, new length, MAC and FECF."""
    from protocols.tc_frame import build_tc_frame

    plain = parse_tc_frame(frame)
    return build_tc_frame(plain.scid, plain.vcid, plain.frame_seq, plain.data, plain.bypass, plain.control, sender)


@dataclass(frozen=True)
class Verified:
    """A frame that passed authentication (not yet committed)."""

    spi: int
    seq: int
    data: bytes


class FrameAuthenticator:
    """Rover side (and the ground's reference model): verify, then commit."""

    def __init__(self, keys: KeyStore, window: int = REPLAY_WINDOW) -> None:
        self.keys = keys
        self.window = window
        self.associations: dict[int, SecurityAssociation] = {}

    def association(self, spi: int) -> SecurityAssociation | None:
        sa = self.associations.get(spi)
        if sa is None:
            key = self.keys.get(spi)
            if key is None:
                return None
            sa = self.associations[spi] = SecurityAssociation(spi, key, AntiReplay(self.window))
        return sa

    def verify_fields(self, mac_input: bytes, spi: int, seq: int, mac: bytes) -> None:
        """Raise AuthError (reason in the order of the module docstring); change nothing."""
        sa = self.association(spi)
        if sa is None:
            raise AuthError(AuthReason.UNKNOWN_SPI, f"no key for SPI {spi} (octets 5-6)", spi, seq)
        if not hmac.compare_digest(compute_mac(sa.key, mac_input), mac):
            raise AuthError(AuthReason.BAD_MAC, f"MAC mismatch for SPI {spi} seq {seq}", spi, seq)
        reason = sa.replay.check(seq)
        if reason is AuthReason.OUT_OF_WINDOW:
            raise AuthError(
                reason, f"seq {seq} is outside the window (highest accepted {sa.replay.highest})", spi, seq
            )
        if reason is AuthReason.REPLAYED:
            raise AuthError(reason, f"seq {seq} was already accepted on SPI {spi}", spi, seq)

    def check(self, frame: TcFrame) -> None:
        """For parse_tc_frame(..., security=authenticator)."""
        assert frame.spi is not None and frame.sec_seq is not None and frame.mac is not None
        self.verify_fields(frame.mac_input, frame.spi, frame.sec_seq, frame.mac)

    def verify(self, frame: bytes) -> Verified:
        """Verify a whole TC frame (FECF checked too); raises AuthError or ProtocolError."""
        raw = bytes(frame)
        if len(raw) < PRIMARY_HEADER_LENGTH + SECURITY_OVERHEAD + FECF_LENGTH:
            raise AuthError(
                AuthReason.NO_SECURITY_HEADER,
                f"TC frame of {len(raw)} octets is too short for the security header and MAC",
            )
        parsed = parse_tc_frame(raw, security=self)
        assert parsed.spi is not None and parsed.sec_seq is not None
        return Verified(parsed.spi, parsed.sec_seq, parsed.data)

    def commit(self, spi: int, seq: int) -> None:
        """Record `seq` as accepted on `spi` (call once FARM-1 accepted the frame)."""
        sa = self.association(spi)
        if sa is None:
            raise ProtocolError(f"cannot commit on SPI {spi}: no key")
        sa.replay.commit(seq)


