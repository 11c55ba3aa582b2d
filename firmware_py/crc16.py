# CRC-16/CCITT-FALSE for the rover's frames and packets (CCSDS 232.0-B / 132.0-B FECF,
# ECSS-E-ST-70-41C packet error control): poly 0x1021, init 0xFFFF, no reflection,
# xorout 0. Check value crc16(b"123456789") == 0x29B1; a CRC over data + its CRC is 0.
#
# MicroPython has no binascii.crc_hqx, so this is table-driven: one 256-entry table
# (512 octets) built at import, then one lookup per octet and no allocation.
# On MicroPython the loop is compiled by the viper emitter (native code: about 20x
# faster than bytecode); where that emitter is missing the same loop runs as plain
# Python. NATIVE says which one is in use. On CPython (the rover in virtual time)
# binascii.crc_hqx computes the identical CRC in C, about 50x faster than the loop.
#
#   crc16(buf, start=0, end=None, crc=0xFFFF) -> int
#       buf: bytes, bytearray or memoryview; covers buf[start:end]; pass the running
#       crc to continue over several pieces.
from array import array

from firmware_py.compat import MICROPYTHON, const

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


def _crc_py(buf, start, end, crc):
    t = _TABLE
    for i in range(start, end):
        crc = ((crc << 8) & 0xFF00) ^ t[(crc >> 8) ^ buf[i]]
    return crc


# Viper source, compiled at import on MicroPython only (CPython cannot even parse
# the decorator's meaning). ptr8/ptr16 read the buffers in place.
_VIPER = """
@micropython.viper
def _crc_viper(buf, start: int, end: int, crc: int) -> int:
    t = ptr16(_TABLE)
    b = ptr8(buf)
    i = start
    while i < end:
        crc = ((crc << 8) & 0xFF00) ^ t[((crc >> 8) ^ b[i]) & 0xFF]
        i += 1
    return crc
"""

_crc = _crc_py
NATIVE = False
if not MICROPYTHON:
    import binascii

    def _crc_c(buf, start, end, crc):
        return binascii.crc_hqx(memoryview(buf)[start:end], crc)

    _crc = _crc_c
if MICROPYTHON:
    try:
        import micropython

        _g = {"micropython": micropython, "_TABLE": _TABLE}
        exec(_VIPER, _g)
        if _g["_crc_viper"](b"123456789", 0, 9, 0xFFFF) == 0x29B1:
            _crc = _g["_crc_viper"]
            NATIVE = True
        _g = None
    except Exception:  # no native emitter on this build: plain Python
        pass


def crc16(buf, start=0, end=None, crc=0xFFFF):
    if end is None:
        end = len(buf)
    return _crc(buf, start, end, crc)
