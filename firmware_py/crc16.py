# CRC-16/CCITT-FALSE for the rover's frames and packets (CCSDS 232.0-B / 132.0-B FECF,
# ECSS-E-ST-70-41C packet error control): poly 0x1021, init 0xFFFF, no reflection,
# xorout 0. Check value crc16(b"123456789") == 0x29B1; a CRC over data + its CRC is 0.
#
# MicroPython has no binascii.crc_hqx, so this is table-driven: one 256-entry table
# (512 octets) built at import, then one lookup per octet and no allocation.
#
#   crc16(buf, start=0, end=None, crc=0xFFFF) -> int
#       buf: bytes, bytearray or memoryview; covers buf[start:end]; pass the running
#       crc to continue over several pieces.
from array import array

from firmware_py.compat import const

_POLY = const(0x1021)


def _make_table():
    t = array("H", [0] * 256)
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ _POLY) if c & 0x8000 else (c << 1)
        t[i] = c & 0xFFFF
    return t


_TABLE = _make_table()


def crc16(buf, start=0, end=None, crc=0xFFFF):
    t = _TABLE
    if end is None:
        end = len(buf)
    for i in range(start, end):
        crc = ((crc << 8) & 0xFF00) ^ t[(crc >> 8) ^ buf[i]]
    return crc
