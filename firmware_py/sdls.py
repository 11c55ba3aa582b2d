# TC frame authentication in the style of SDLS (CCSDS 355.0-B), the rover's side.
#
# Secured TC frame: header(5) | SPI u16 | seq u32 | data | MAC(16) | FECF(2); the
# frame length field covers all of it. MAC = HMAC-SHA256(key, header + SPI + seq +
# data)[:16] (RFC 2104 built on hashlib.sha256: MicroPython has no hmac module; the
# key's inner and outer pad blocks are made once per key).
# Checks in this order (as the ground's reference model): too short ->
# NO_SECURITY_HEADER, no key for the SPI -> UNKNOWN_SPI, MAC mismatch -> BAD_MAC,
# seq <= H - window -> OUT_OF_WINDOW, seq already accepted -> REPLAYED.
# Anti-replay per SPI, IPsec style: H = highest sequence number accepted (0 at start;
# the ground's first seq is 1), the seqs H-63..H accepted kept as a circular bitmap
# indexed by seq mod 64 (no big ints on a 32-bit board).
# A sequence number is recorded only by commit(), called after FARM-1 accepts the
# frame: a COP-1 retransmission of a frame FARM discarded is not a replay.
#
#   Security(keys, window=64)        keys: {spi int: key bytes}
#   .verify(frame, n) -> reason      0 ok, else AUTH_* (dictionary enum auth_reason);
#       then .spi, .seq, .data_start, .data_end (data span inside frame) are set
#       (spi/seq are 0 when the frame is too short to carry them).
#   .commit(spi, seq)                mark seq accepted (after FARM-1 accepted it)
#   .highest(spi) -> H
#   .build_frame(buf, bypass, control, scid, vcid, ns, spi, seq, data) -> n
#       a secured frame with FECF, for on-board tests and loopbacks.
#   load_keys(path) -> {spi: key bytes}   from {"keys": {"1": "<hex>", ...}}
#   hmac_sha256(key, msg) -> 32 octets     (plain RFC 2104, for tests)
import hashlib
import struct

from firmware_py.compat import const
from firmware_py.crc16 import crc16

AUTH_OK = const(0)
AUTH_UNKNOWN_SPI = const(1)
AUTH_BAD_MAC = const(2)
AUTH_REPLAYED = const(3)
AUTH_OUT_OF_WINDOW = const(4)
AUTH_NO_SECURITY_HEADER = const(5)

HEADER_LEN = const(5)
SEC_HEADER_LEN = const(6)
MAC_LEN = const(16)
FECF_LEN = const(2)
# Shortest secured frame: header, security header, no data, MAC, FECF.
MIN_SECURED = const(29)

_BLOCK = const(64)


def _pads(key):
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    ipad = bytearray(_BLOCK)
    opad = bytearray(_BLOCK)
    for i in range(_BLOCK):
        k = key[i] if i < len(key) else 0
        ipad[i] = k ^ 0x36
        opad[i] = k ^ 0x5C
    return bytes(ipad), bytes(opad)


def _hmac(pads, msg):
    h = hashlib.sha256(pads[0])
    h.update(msg)
    o = hashlib.sha256(pads[1])
    o.update(h.digest())
    return o.digest()


def hmac_sha256(key, msg):
    return _hmac(_pads(key), msg)


def load_keys(path):
    import binascii
    import json

    with open(path) as f:
        d = json.load(f)
    keys = {}
    for spi, hx in d["keys"].items():
        keys[int(spi)] = binascii.unhexlify(hx)
    return keys


class Security:
    def __init__(self, keys, window=64):
        if window < 1 or window > 64:
            raise ValueError("window must be 1..64")
        self.window = window
        self._pads = {}
        self._h = {}
        self._bits = {}
        for spi in keys:
            self._pads[spi] = _pads(keys[spi])
            self._h[spi] = 0
            self._bits[spi] = bytearray(8)
        self.spi = 0
        self.seq = 0
        self.data_start = 0
        self.data_end = 0

    def highest(self, spi):
        return self._h[spi]

    def verify(self, f, n):
        self.spi = 0
        self.seq = 0
        self.data_start = 0
        self.data_end = 0
        if n < MIN_SECURED:
            return AUTH_NO_SECURITY_HEADER
        spi = (f[5] << 8) | f[6]
        seq = (f[7] << 24) | (f[8] << 16) | (f[9] << 8) | f[10]
        self.spi = spi
        self.seq = seq
        self.data_start = HEADER_LEN + SEC_HEADER_LEN
        self.data_end = n - MAC_LEN - FECF_LEN
        pads = self._pads.get(spi)
        if pads is None:
            return AUTH_UNKNOWN_SPI
        end = self.data_end
        mac = _hmac(pads, f[0:end])
        d = 0
        for i in range(MAC_LEN):
            d |= mac[i] ^ f[end + i]
        if d:
            return AUTH_BAD_MAC
        h = self._h[spi]
        if seq > h:
            return AUTH_OK
        if h - seq >= self.window:
            return AUTH_OUT_OF_WINDOW
        if self._bits[spi][(seq >> 3) & 7] & (1 << (seq & 7)):
            return AUTH_REPLAYED
        return AUTH_OK

    def commit(self, spi, seq):
        bits = self._bits[spi]
        h = self._h[spi]
        if seq > h:
            if seq - h >= 64:
                for i in range(8):
                    bits[i] = 0
            else:
                s = h + 1
                while s < seq:
                    bits[(s >> 3) & 7] &= ~(1 << (s & 7)) & 0xFF
                    s += 1
            self._h[spi] = seq
        elif h - seq >= self.window:
            return
        bits[(seq >> 3) & 7] |= 1 << (seq & 7)

    def build_frame(self, buf, bypass, control, scid, vcid, ns, spi, seq, data):
        n = HEADER_LEN + SEC_HEADER_LEN + len(data) + MAC_LEN + FECF_LEN
        ln = n - 1
        buf[0] = (bypass << 5) | (control << 4) | ((scid >> 8) & 3)
        buf[1] = scid & 0xFF
        buf[2] = ((vcid & 0x3F) << 2) | ((ln >> 8) & 3)
        buf[3] = ln & 0xFF
        buf[4] = ns & 0xFF
        struct.pack_into(">HI", buf, HEADER_LEN, spi, seq)
        end = HEADER_LEN + SEC_HEADER_LEN + len(data)
        buf[HEADER_LEN + SEC_HEADER_LEN : end] = data
        mac = _hmac(self._pads[spi], memoryview(buf)[0:end])
        buf[end : end + MAC_LEN] = mac[0:MAC_LEN]
        c = crc16(buf, 0, n - 2)
        buf[n - 2] = c >> 8
        buf[n - 1] = c & 0xFF
        return n
