"""The UF2 writer rebuilds the stock MicroPython RP2040 UF2 octet for octet from its own
payload; the parser rejects what is not a UF2."""

from __future__ import annotations

import struct

import pytest

from hil.firmware.uf2 import (
    FAMILY_RP2040,
    FAMILY_RP2350_ARM_S,
    FLAG_FAMILY_ID_PRESENT,
    FLASH_BASE,
    Uf2Error,
    bin_to_uf2,
    parse_uf2,
    uf2_image,
)
from tests.conftest import need
from tests.firmware_build.conftest import STOCK_UF2


def test_stock_uf2_is_rebuilt_octet_for_octet() -> None:
    need(STOCK_UF2.is_file(), f"no stock UF2 at {STOCK_UF2}")
    stock = STOCK_UF2.read_bytes()
    blocks = parse_uf2(stock)
    assert len(blocks) == len(stock) // 512 == 1327
    assert {b.flags for b in blocks} == {FLAG_FAMILY_ID_PRESENT}
    assert {b.family_id for b in blocks} == {FAMILY_RP2040}
    assert {len(b.payload) for b in blocks} == {256}
    assert [b.target_addr for b in blocks] == [FLASH_BASE + 256 * n for n in range(len(blocks))]
    assert [b.block_no for b in blocks] == list(range(len(blocks)))
    assert {b.num_blocks for b in blocks} == {len(blocks)}

    image = uf2_image(stock)
    assert (image.base_addr, image.family_id, image.blocks) == (FLASH_BASE, FAMILY_RP2040, 1327)
    assert bin_to_uf2(image.data, image.base_addr, image.family_id) == stock


def test_last_block_is_padded_and_every_field_is_written() -> None:
    data = bytes(range(256)) + b"\xaa" * 44
    uf2 = bin_to_uf2(data, 0x10000000, FAMILY_RP2350_ARM_S)
    assert len(uf2) == 1024
    m0, m1, flags, addr, size, no, count, family = struct.unpack_from("<8I", uf2, 512)
    assert (m0, m1, flags, addr, size, no, count, family) == (
        0x0A324655, 0x9E5D5157, 0x2000, 0x10000100, 256, 1, 2, 0xE48BFF59
    )
    assert struct.unpack_from("<I", uf2, 1020)[0] == 0x0AB16F30
    assert uf2[512 + 32 : 512 + 32 + 44] == b"\xaa" * 44
    assert uf2[512 + 32 + 44 : 1020] == bytes(1020 - 512 - 32 - 44)
    image = uf2_image(uf2)
    assert image.data == data + bytes(256 - 44)
    assert image.family_id == FAMILY_RP2350_ARM_S


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a UF2 file"),
        (b"\0" * 100, "not a UF2 file"),
        (b"\0" * 512, "bad magic"),
    ],
)
def test_parser_rejects_what_is_not_a_uf2(data: bytes, message: str) -> None:
    with pytest.raises(Uf2Error, match=message):
        parse_uf2(data)


def test_image_with_a_gap_or_two_families_is_refused() -> None:
    a = bin_to_uf2(b"\1" * 256, 0x10000000)
    b = bin_to_uf2(b"\2" * 256, 0x10000200)
    with pytest.raises(Uf2Error, match="gap"):
        uf2_image(a + b)
    c = bin_to_uf2(b"\2" * 256, 0x10000100, FAMILY_RP2350_ARM_S)
    with pytest.raises(Uf2Error, match="mixes families"):
        uf2_image(a + c)


def test_empty_image_is_refused() -> None:
    with pytest.raises(Uf2Error, match="empty"):
        bin_to_uf2(b"")
