"""CRC-16/CCITT-FALSE, the CRC of CCSDS frames (FECF, CCSDS 132.0-B and 232.0-B) and of
PUS packets (packet error control, ECSS-E-ST-70-41C): poly 0x1021, init 0xFFFF, no reflection,
xorout 0. Check value for b"123456789" is 0x29B1; the CRC over data + its CRC is 0."""

from __future__ import annotations

import crcmod.predefined

CRC_NAME = "crc-ccitt-false"
CHECK_VALUE = 0x29B1

_crc_fun = crcmod.predefined.mkPredefinedCrcFun(CRC_NAME)


def crc16(data: bytes | bytearray | memoryview, init: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of `data`, starting from `init` (pass a previous CRC to continue)."""
    return int(_crc_fun(data, init))
