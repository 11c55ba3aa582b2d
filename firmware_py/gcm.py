# AES-256-GCM and GMAC (NIST SP 800-38D) for the rover's link security (CCSDS 355.0-B-2
# with the algorithms of CCSDS 352.0-B): AES from the port's cryptolib (ECB, one block at
# a time), GHASH written here.
#
# GHASH multiplies by H in GF(2^128) with Shoup's 4-bit tables: per key, M[n] = n.H for
# the 16 nibble values (16 x 128 bits = 64 u32 words) and one shared reduction table R;
# then a block costs 32 table look-ups and shifts of four 32-bit words, no big ints. On
# MicroPython the GHASH loop is compiled by the viper emitter at import (native code);
# where that emitter is missing, and on CPython, the same loop runs as plain Python.
# NATIVE says which one is in use. Nothing is allocated per message: the counter block,
# keystream, GHASH state and tag live in buffers made once per key, and every call takes
# (buffer, start, end) instead of slices.
#
#   g = Gcm(key)                    key: 32 octets (AES-256)
#   g.begin(iv, off)                a message with the 12-octet IV iv[off:off+12]
#   g.aad(buf, s, e)                feed additional authenticated data (any pieces)
#   g.text(buf, s, e)               feed ciphertext (after all AAD; any pieces)
#   g.ctr(buf, s, e)                XOR the keystream into buf[s:e] in place (encrypts
#                                   or decrypts; the counter runs on across calls)
#   g.finish(out, o)                the 16-octet tag into out[o:o+16]
#   g.check(tag, o) -> bool         finish, compared with tag[o:o+16] in constant time
#   Encrypt: begin, aad, ctr, text(ciphertext), finish.
#   Decrypt: begin, aad, text(ciphertext), check, then ctr.   GMAC: begin, aad, check.
from array import array

from firmware_py.compat import MICROPYTHON, const

if MICROPYTHON:
    import cryptolib
else:
    from firmware_py.compat import cryptolib

_MODE_ECB = const(1)
_AAD = const(0)
_TEXT = const(1)
_R128 = 0xE1 << 120


def _mulx(v):
    # v * x in GCM's bit order (x^0 is the most significant bit)
    return (v >> 1) ^ _R128 if v & 1 else v >> 1


def _words(v, out, k):
    out[k] = (v >> 96) & 0xFFFFFFFF
    out[k + 1] = (v >> 64) & 0xFFFFFFFF
    out[k + 2] = (v >> 32) & 0xFFFFFFFF
    out[k + 3] = v & 0xFFFFFFFF


def _reduction():
    # R[rem]: what the four bits shifted out by Z * x^4 fold back in, as the top word
    r = array("I", [0] * 16)
    for rem in range(16):
        v = 0
        for b in range(4):
            if rem & (1 << b):
                v ^= _R128 >> (3 - b)
        r[rem] = v >> 96
    return r


_R = _reduction()


def _table(h):
    # M[n] = n.H, where nibble n holds x^0..x^3 from its high bit down (n << 124)
    hv = int.from_bytes(bytes(h), "big")
    m = array("I", [0] * 64)
    v = hv
    for n in (8, 4, 2, 1):
        _words(v, m, n * 4)
        v = _mulx(v)
    for n in range(2, 16):
        if n & (n - 1):  # not a power of two: the XOR of its bits' entries
            lo = n & -n
            for k in range(4):
                m[n * 4 + k] = m[lo * 4 + k] ^ m[(n ^ lo) * 4 + k]
    return m


# GHASH state x (16 octets) := x * H, by the table m and reduction r (plain Python).
def _gmult_py(x, m, r):
    z0 = z1 = z2 = z3 = 0
    i = 15
    while i >= 0:
        b = x[i]
        k = (b & 15) << 2
        z0 ^= m[k]
        z1 ^= m[k + 1]
        z2 ^= m[k + 2]
        z3 ^= m[k + 3]
        rem = z3 & 15
        z3 = ((z3 >> 4) | (z2 << 28)) & 0xFFFFFFFF
        z2 = ((z2 >> 4) | (z1 << 28)) & 0xFFFFFFFF
        z1 = ((z1 >> 4) | (z0 << 28)) & 0xFFFFFFFF
        z0 = (z0 >> 4) ^ r[rem]
        k = (b >> 4) << 2
        z0 ^= m[k]
        z1 ^= m[k + 1]
        z2 ^= m[k + 2]
        z3 ^= m[k + 3]
        if i:
            rem = z3 & 15
            z3 = ((z3 >> 4) | (z2 << 28)) & 0xFFFFFFFF
            z2 = ((z2 >> 4) | (z1 << 28)) & 0xFFFFFFFF
            z1 = ((z1 >> 4) | (z0 << 28)) & 0xFFFFFFFF
            z0 = (z0 >> 4) ^ r[rem]
        i -= 1
    for j in range(4):
        x[j] = (z0 >> (24 - 8 * j)) & 0xFF
        x[4 + j] = (z1 >> (24 - 8 * j)) & 0xFF
        x[8 + j] = (z2 >> (24 - 8 * j)) & 0xFF
        x[12 + j] = (z3 >> (24 - 8 * j)) & 0xFF


# XOR buf[s:e] into the state from octet pos on, multiplying by H at each full block;
# returns the new pos (0..15).
def _feed_py(x, m, r, buf, s, e, pos):
    while s < e:
        x[pos] ^= buf[s]
        pos += 1
        s += 1
        if pos == 16:
            _gmult(x, m, r)
            pos = 0
    return pos


def _xor_py(buf, s, e, ks):
    k = 0
    while s < e:
        buf[s] ^= ks[k]
        s += 1
        k += 1


# The same three loops for the viper emitter (MicroPython only: compiled at import).
_VIPER = """
@micropython.viper
def _gmult_v(x, m, r):
    X = ptr8(x)
    M = ptr32(m)
    R = ptr32(r)
    mask = (uint(0xFFFF) << 16) | uint(0xFFFF)
    z0 = uint(0)
    z1 = uint(0)
    z2 = uint(0)
    z3 = uint(0)
    i = 15
    while i >= 0:
        b = int(X[i])
        k = (b & 15) << 2
        z0 ^= uint(M[k])
        z1 ^= uint(M[k + 1])
        z2 ^= uint(M[k + 2])
        z3 ^= uint(M[k + 3])
        rem = int(z3 & uint(15))
        z3 = ((z3 >> 4) | (z2 << 28)) & mask
        z2 = ((z2 >> 4) | (z1 << 28)) & mask
        z1 = ((z1 >> 4) | (z0 << 28)) & mask
        z0 = (z0 >> 4) ^ uint(R[rem])
        k = (b >> 4) << 2
        z0 ^= uint(M[k])
        z1 ^= uint(M[k + 1])
        z2 ^= uint(M[k + 2])
        z3 ^= uint(M[k + 3])
        if i > 0:
            rem = int(z3 & uint(15))
            z3 = ((z3 >> 4) | (z2 << 28)) & mask
            z2 = ((z2 >> 4) | (z1 << 28)) & mask
            z1 = ((z1 >> 4) | (z0 << 28)) & mask
            z0 = (z0 >> 4) ^ uint(R[rem])
        i -= 1
    X[0] = z0 >> 24
    X[1] = z0 >> 16
    X[2] = z0 >> 8
    X[3] = z0
    X[4] = z1 >> 24
    X[5] = z1 >> 16
    X[6] = z1 >> 8
    X[7] = z1
    X[8] = z2 >> 24
    X[9] = z2 >> 16
    X[10] = z2 >> 8
    X[11] = z2
    X[12] = z3 >> 24
    X[13] = z3 >> 16
    X[14] = z3 >> 8
    X[15] = z3

@micropython.viper
def _feed_v(x, m, r, buf, s: int, e: int, pos: int) -> int:
    X = ptr8(x)
    B = ptr8(buf)
    while s < e:
        X[pos] ^= B[s]
        pos += 1
        s += 1
        if pos == 16:
            _gmult_v(x, m, r)
            pos = 0
    return pos

@micropython.viper
def _xor_v(buf, s: int, e: int, ks):
    B = ptr8(buf)
    K = ptr8(ks)
    k = 0
    while s < e:
        B[s] ^= K[k]
        s += 1
        k += 1
"""

_gmult = _gmult_py
_feed = _feed_py
_xor = _xor_py
NATIVE = False


def _self_check(gmult):
    # H = 66e94bd4ef8a2c3b884cfa59ca342b2e (AES-128 of zeros under the zero key, the
    # test cases of the GCM specification): H * H, from the big-int definition
    h = bytes.fromhex("66e94bd4ef8a2c3b884cfa59ca342b2e")
    hv = int.from_bytes(h, "big")
    z = 0
    v = hv
    for i in range(128):
        if (hv >> (127 - i)) & 1:
            z ^= v
        v = _mulx(v)
    x = bytearray(h)
    gmult(x, _table(h), _R)
    return bytes(x) == z.to_bytes(16, "big")


if MICROPYTHON:
    try:
        import micropython

        _g = {"micropython": micropython}
        exec(_VIPER, _g)
        if _self_check(_g["_gmult_v"]):
            _gmult = _g["_gmult_v"]
            _feed = _g["_feed_v"]
            _xor = _g["_xor_v"]
            NATIVE = True
        _g = None
    except Exception:  # no native emitter on this build: plain Python
        pass
    # what the native path no longer needs leaves the heap (_gmult_py stays: the tests
    # compare the two loops)
    del _VIPER, _self_check
    if NATIVE:
        del _feed_py, _xor_py


class Gcm:
    def __init__(self, key):
        if len(key) != 32:
            raise ValueError("AES-256 key must be 32 octets")
        self._enc = cryptolib.aes(bytes(key), _MODE_ECB).encrypt
        h = bytearray(16)
        self._enc(bytes(16), h)
        self._m = _table(h)
        self._x = bytearray(16)  # GHASH state
        self._j = bytearray(16)  # counter block
        self._j0 = bytearray(16)  # E(J0)
        self._ks = bytearray(16)  # keystream block
        self._t = bytearray(16)  # computed tag
        self._pos = 0
        self._phase = _AAD
        self._alen = 0
        self._clen = 0
        self._kpos = 16

    def begin(self, iv, off):
        j = self._j
        x = self._x
        for i in range(12):
            j[i] = iv[off + i]
        j[12] = 0
        j[13] = 0
        j[14] = 0
        j[15] = 1
        self._enc(j, self._j0)
        for i in range(16):
            x[i] = 0
        self._pos = 0
        self._phase = _AAD
        self._alen = 0
        self._clen = 0
        self._kpos = 16

    def aad(self, buf, s, e):
        self._pos = _feed(self._x, self._m, _R, buf, s, e, self._pos)
        self._alen += e - s

    def text(self, buf, s, e):
        if self._phase == _AAD:
            self._pad()
            self._phase = _TEXT
        self._pos = _feed(self._x, self._m, _R, buf, s, e, self._pos)
        self._clen += e - s

    def _pad(self):
        if self._pos:
            _gmult(self._x, self._m, _R)
            self._pos = 0

    def _next(self):
        # inc32 on the counter block, then its keystream block
        j = self._j
        i = 15
        while i >= 12:
            j[i] = (j[i] + 1) & 0xFF
            if j[i]:
                break
            i -= 1
        self._enc(j, self._ks)
        self._kpos = 0

    def ctr(self, buf, s, e):
        ks = self._ks
        while s < e:
            if self._kpos == 16:
                self._next()
            k = self._kpos
            n = e - s
            if n > 16 - k:
                n = 16 - k
            if k == 0:
                _xor(buf, s, s + n, ks)
            else:
                for i in range(n):
                    buf[s + i] ^= ks[k + i]
            self._kpos = k + n
            s += n

    def finish(self, out, o):
        self._pad()
        x = self._x
        a = self._alen << 3
        c = self._clen << 3
        # len(A) || len(C) in bits, 64 bits each; both fit 32 bits here
        for i in range(4):
            x[4 + i] ^= (a >> (24 - 8 * i)) & 0xFF
            x[12 + i] ^= (c >> (24 - 8 * i)) & 0xFF
        _gmult(x, self._m, _R)
        j0 = self._j0
        for i in range(16):
            out[o + i] = x[i] ^ j0[i]

    def check(self, tag, o):
        t = self._t
        self.finish(t, 0)
        d = 0
        for i in range(16):
            d |= t[i] ^ tag[o + i]
        return d == 0
