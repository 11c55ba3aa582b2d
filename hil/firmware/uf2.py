"""UF2 (USB Flashing Format) files: write one from a flat binary, parse one back.

Each 512-octet block is a 32-octet header (magic 0x0A324655, 0x9E5D5157, flags, target
address, payload size, block number, block count, family id), the payload padded with zeros
to 476 octets, and the end magic 0x0AB16F30; all fields little-endian u32.

The format is small enough to write here: the PyPI packages that do it (adafruit-uf2, a copy
of uf2conv.py driven by module globals; uf2utils, LGPL and pulling in littlefs-python) would
cost more than these lines.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hil.errors import FarsideError

MAGIC_START0 = 0x0A324655
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
BLOCK_SIZE = 512
DATA_SIZE = 476
PAYLOAD_SIZE = 256
FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FAMILY_ID_PRESENT = 0x00002000

FLASH_BASE = 0x10000000  # XIP flash on the RP2040 and the RP2350
FAMILY_RP2040 = 0xE48BFF56
FAMILY_RP2350_ARM_S = 0xE48BFF59
FAMILY_NAMES = {
    FAMILY_RP2040: "RP2040",
    FAMILY_RP2350_ARM_S: "RP2350 (Arm, secure)",
    0xE48BFF5A: "RP2350 (RISC-V)",
    0xE48BFF5B: "RP2350 (Arm, non-secure)",
    0x68ED2B88: "SAMD21",
    0x55114460: "SAMD51",
    0xBFDD4EEE: "ESP32-S2",
    0xADA52840: "nRF52840",
}

_HEADER = struct.Struct("<8I")
_END = struct.Struct("<I")


class Uf2Error(FarsideError):
    """A file that is not a well-formed UF2."""


@dataclass(frozen=True)
class Uf2Block:
    """One UF2 block: its header fields and its payload (without the zero padding)."""

    flags: int
    target_addr: int
    block_no: int
    num_blocks: int
    family_id: int
    payload: bytes

    def pack(self) -> bytes:
        """The block's 512 octets."""
        if len(self.payload) > DATA_SIZE:
            raise Uf2Error(f"UF2 payload of {len(self.payload)} octets exceeds {DATA_SIZE}")
        header = _HEADER.pack(
            MAGIC_START0,
            MAGIC_START1,
            self.flags,
            self.target_addr,
            len(self.payload),
            self.block_no,
            self.num_blocks,
            self.family_id,
        )
        data = self.payload.ljust(DATA_SIZE, b"\0")
        return header + data + _END.pack(MAGIC_END)


def bin_to_uf2(
    image: bytes,
    base_addr: int = FLASH_BASE,
    family_id: int = FAMILY_RP2040,
    payload_size: int = PAYLOAD_SIZE,
) -> bytes:
    """A UF2 holding `image` at `base_addr`: `payload_size`-octet payloads (the last one
    padded with zeros), flags "family id present"."""
    if not image:
        raise Uf2Error("empty firmware image: nothing to put in a UF2")
    count = (len(image) + payload_size - 1) // payload_size
    blocks = []
    for n in range(count):
        chunk = image[n * payload_size : (n + 1) * payload_size].ljust(payload_size, b"\0")
        blocks.append(
            Uf2Block(
                flags=FLAG_FAMILY_ID_PRESENT,
                target_addr=base_addr + n * payload_size,
                block_no=n,
                num_blocks=count,
                family_id=family_id,
                payload=chunk,
            ).pack()
        )
    return b"".join(blocks)


def parse_uf2(data: bytes) -> list[Uf2Block]:
    """Every block of a UF2 file, checked: whole blocks, magics, payload size."""
    if not data or len(data) % BLOCK_SIZE:
        raise Uf2Error(f"not a UF2 file: {len(data)} octets is not a whole number of 512-octet blocks")
    blocks = []
    for offset in range(0, len(data), BLOCK_SIZE):
        m0, m1, flags, addr, size, no, count, family = _HEADER.unpack_from(data, offset)
        (end,) = _END.unpack_from(data, offset + BLOCK_SIZE - 4)
        where = f"UF2 block at octet {offset}"
        if (m0, m1, end) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            raise Uf2Error(f"{where}: bad magic")
        if size > DATA_SIZE:
            raise Uf2Error(f"{where}: payload size {size} exceeds {DATA_SIZE}")
        payload = bytes(data[offset + _HEADER.size : offset + _HEADER.size + size])
        blocks.append(Uf2Block(flags, addr, no, count, family, payload))
    return blocks


@dataclass(frozen=True)
class Uf2Image:
    """The contiguous flash image a UF2 writes: where it starts, its family, its octets."""

    base_addr: int
    family_id: int
    data: bytes
    blocks: int


def uf2_image(data: bytes) -> Uf2Image:
    """The flash image of a single-family UF2 with no gaps (what bin_to_uf2 writes)."""
    blocks = [b for b in parse_uf2(data) if not b.flags & FLAG_NOT_MAIN_FLASH]
    if not blocks:
        raise Uf2Error("UF2 file holds no flash blocks")
    families = {b.family_id for b in blocks}
    if len(families) != 1:
        raise Uf2Error("UF2 file mixes families: " + ", ".join(f"0x{f:08X}" for f in sorted(families)))
    blocks.sort(key=lambda b: b.target_addr)
    base = blocks[0].target_addr
    out = bytearray()
    for b in blocks:
        if b.target_addr != base + len(out):
            raise Uf2Error(f"UF2 file has a gap or overlap at 0x{b.target_addr:08X}")
        out += b.payload
    return Uf2Image(base, blocks[0].family_id, bytes(out), len(blocks))
