"""Communications Link Transmission Unit (CCSDS 231.0-B-4 TC Synchronization and Channel
Coding, sections 3 and 5): start sequence EB90, BCH(63,56) code blocks, tail sequence.

Each code block is 7 information octets followed by one octet: the 7 parity bits of the
(63,56) modified BCH code, generator g(x) = x^7 + x^6 + x^2 + 1, complemented, then a filler
bit 0. Information that does not fill the last block is padded with 0x55. The tail
C5C5C5C5C5C5C579 is a block that never decodes. The receiver corrects a single bit error per
block (or only detects errors, in detection mode) and stops at the first block it cannot
decode (the tail, or damage); the TC frames inside are delimited by their length fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.crc import crc16
from protocols.errors import ProtocolError
from protocols.tc_frame import MAX_FRAME_LENGTH, MIN_FRAME_LENGTH, frame_length_from_header

START_SEQUENCE = bytes.fromhex("EB90")
TAIL_SEQUENCE = bytes.fromhex("C5C5C5C5C5C5C579")
INFO_OCTETS = 7
BLOCK_OCTETS = 8
FILL = 0x55
_POLY = 0x45 << 1  # x^6 + x^2 + 1 (x^7 implicit), aligned to the top of an octet


def _table() -> list[int]:
    out = []
    for value in range(256):
        reg = value
        for _ in range(8):
            reg = ((reg << 1) ^ _POLY) & 0xFF if reg & 0x80 else (reg << 1) & 0xFF
        out.append(reg)
    return out


_TABLE = _table()


def bch_parity(info: bytes) -> int:
    """The code block's last octet for 7 information octets: ~parity << 1, filler bit 0."""
    reg = 0
    for octet in info:
        reg = _TABLE[reg ^ octet]
    return (~reg) & 0xFE


def _syndrome(block: bytes) -> int:
    return (bch_parity(block[:INFO_OCTETS]) ^ block[INFO_OCTETS]) & 0xFE


def _single_error_syndromes() -> dict[int, int]:
    """Syndrome -> bit index (0 = MSB of the block) of a single bit error."""
    base = bytes(INFO_OCTETS) + bytes([bch_parity(bytes(INFO_OCTETS))])
    table = {}
    for bit in range(63):
        block = bytearray(base)
        block[bit // 8] ^= 0x80 >> (bit % 8)
        table[_syndrome(bytes(block))] = bit
    return table


_CORRECTABLE = _single_error_syndromes()


def encode_block(info: bytes) -> bytes:
    if len(info) != INFO_OCTETS:
        raise ProtocolError(f"a BCH code block carries {INFO_OCTETS} octets, got {len(info)}")
    return bytes(info) + bytes([bch_parity(info)])


def decode_block(block: bytes, correct: bool = True) -> tuple[bytes, bool] | None:
    """(7 information octets, corrected?) or None when the block does not decode."""
    s = _syndrome(block)
    if s == 0:
        return bytes(block[:INFO_OCTETS]), False
    if correct and s in _CORRECTABLE:
        bit = _CORRECTABLE[s]
        fixed = bytearray(block)
        fixed[bit // 8] ^= 0x80 >> (bit % 8)
        return bytes(fixed[:INFO_OCTETS]), True
    return None


def encode_cltu(data: bytes) -> bytes:
    """A CLTU carrying `data` (one or more TC frames)."""
    if not data:
        raise ProtocolError("a CLTU carries at least one octet")
    padded = bytes(data) + bytes([FILL]) * (-len(data) % INFO_OCTETS)
    blocks = b"".join(encode_block(padded[i : i + INFO_OCTETS]) for i in range(0, len(padded), INFO_OCTETS))
    return START_SEQUENCE + blocks + TAIL_SEQUENCE


def split_frames(data: bytes) -> list[bytes]:
    """The TC frames in a CLTU's decoded data (fill after the last frame ignored)."""
    frames = []
    pos = 0
    while len(data) - pos >= MIN_FRAME_LENGTH and data[pos] >> 6 == 0:
        length = frame_length_from_header(data, pos)
        if length < MIN_FRAME_LENGTH or pos + length > len(data):
            break
        frames.append(bytes(data[pos : pos + length]))
        pos += length
    return frames


def decode_cltu(cltu: bytes, correct: bool = True) -> bytes:
    """The information octets of one whole CLTU (start sequence first); raises ProtocolError."""
    if cltu[:2] != START_SEQUENCE:
        raise ProtocolError(f"CLTU must start with EB90, got {cltu[:2].hex() or 'nothing'} at octet 0")
    out = bytearray()
    pos = 2
    while pos + BLOCK_OCTETS <= len(cltu):
        decoded = decode_block(cltu[pos : pos + BLOCK_OCTETS], correct)
        if decoded is None:
            if cltu[pos : pos + BLOCK_OCTETS] != TAIL_SEQUENCE:
                raise ProtocolError(f"CLTU code block at octet {pos} does not decode")
            return bytes(out)
        out += decoded[0]
        pos += BLOCK_OCTETS
    raise ProtocolError(f"CLTU has no tail sequence (ended at octet {len(cltu)})")


@dataclass
class CltuCounters:
    cltus: int = 0
    blocks: int = 0
    corrected_blocks: int = 0
    frames_ok: int = 0
    bad_crc_frames: int = 0
    garbage_octets: int = 0


@dataclass
class CltuDeframer:
    """Finds CLTUs in a byte stream fed in chunks of any size and returns the good TC frames.

    After the start sequence it decodes code blocks until one does not decode (the tail, or
    damage), then resumes the hunt after that block. Never raises on bad input.
    """

    correct: bool = True
    max_frame_length: int = MAX_FRAME_LENGTH
    counters: CltuCounters = field(default_factory=CltuCounters)

    def __post_init__(self) -> None:
        self._buf = bytearray()
        self._data = bytearray()
        self._in_cltu = False

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[bytes]:
        buf = self._buf
        buf += chunk
        out: list[bytes] = []
        pos = 0
        c = self.counters
        while True:
            if not self._in_cltu:
                i = buf.find(START_SEQUENCE, pos)
                if i < 0:
                    keep = max(pos, len(buf) - 1)
                    c.garbage_octets += keep - pos
                    pos = keep
                    break
                c.garbage_octets += i - pos
                pos = i + 2
                self._in_cltu = True
                self._data.clear()
            if len(buf) - pos < BLOCK_OCTETS:
                break
            block = bytes(buf[pos : pos + BLOCK_OCTETS])
            decoded = decode_block(block, self.correct)
            if decoded is None:
                # the tail or a damaged block ends this CLTU
                self._in_cltu = False
                pos += BLOCK_OCTETS
                c.cltus += 1
                for frame in split_frames(bytes(self._data)):
                    if len(frame) <= self.max_frame_length and crc16(frame) == 0:
                        c.frames_ok += 1
                        out.append(frame)
                    else:
                        c.bad_crc_frames += 1
                continue
            c.blocks += 1
            c.corrected_blocks += int(decoded[1])
            self._data += decoded[0]
            pos += BLOCK_OCTETS
            if len(self._data) > self.max_frame_length + INFO_OCTETS:
                # longer than any frame: not a CLTU after all
                self._in_cltu = False
                c.garbage_octets += len(self._data)
        del buf[:pos]
        return out
