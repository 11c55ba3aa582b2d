# Secured frames built on board, for firmware_py.sdls.Security: TC frames (on-board tests,
# loopbacks, the test runners) and the TM frames of the optional TM authentication.
# Imported only when used.
#
#   build_frame(sec, buf, bypass, control, scid, vcid, ns, spi, seq, data) -> n
#       a secured TC frame with its FECF, in the layout of the SA's suite
#   tm_secure(sec, frame, out) -> n or 0
import struct

from firmware_py.compat import const
from firmware_py.crc16 import crc16
from firmware_py.sdls import (
    FECF_LEN,
    GCM_HEADER_LEN,
    HEADER_LEN,
    IV_LEN,
    MAC_LEN,
    RESERVE,
    SEC_HEADER_LEN,
    SUITE_GCM,
    SUITE_HMAC,
    TM_OVERHEAD,
    _hmac,
)

_TC = const(5)  # TC primary header octets
_TM = const(6)  # TM primary header octets
_TM_HEADER = const(6)
_TM_TRAILER = const(6)  # OCF + FECF
_ASM = const(4)


def build_frame(sec, buf, bypass, control, scid, vcid, ns, spi, seq, data):
    sa = sec._sas[spi]
    gcm = sa.suite != SUITE_HMAC
    sh = GCM_HEADER_LEN if gcm else SEC_HEADER_LEN
    n = HEADER_LEN + sh + len(data) + MAC_LEN + FECF_LEN
    ln = n - 1
    buf[0] = (bypass << 5) | (control << 4) | ((scid >> 8) & 3)
    buf[1] = scid & 0xFF
    buf[2] = ((vcid & 0x3F) << 2) | ((ln >> 8) & 3)
    buf[3] = ln & 0xFF
    buf[4] = ns & 0xFF
    ds = HEADER_LEN + sh
    end = ds + len(data)
    buf[ds:end] = data
    if gcm:
        struct.pack_into(">HIII", buf, HEADER_LEN, spi, 0, 0, seq)
        if sa.suite == SUITE_GCM:
            g = sa.gcm
            g.begin(buf, 7)
            g.ctr(buf, ds, end)
        sec._tag_ok(sa, buf, ds, end, 0x00, 0x00, 0xFC, 0x00, 0x00, _TC)
        buf[end : end + MAC_LEN] = sa.gcm._t  # the tag check() computed
    else:
        struct.pack_into(">HI", buf, HEADER_LEN, spi, seq)
        mac = _hmac(sa.pads, memoryview(buf)[0:end])
        buf[end : end + MAC_LEN] = mac[0:MAC_LEN]
    c = crc16(buf, 0, n - 2)
    buf[n - 2] = c >> 8
    buf[n - 1] = c & 0xFF
    return n

# -- TM authentication --
# frame: ASM + a TM frame whose data field is TM_OVERHEAD octets shorter than the
# mission's; out (ASM + the mission's frame length): the same frame with SPI, IV
# (TM ARSN) and MAC. Returns its length, or 0 when the TM mark could not be saved.

def tm_secure(sec, frame, out):
    sa = sec.tm_sa
    n_in = len(frame)
    seq = sec.tm_seq + 1
    if seq > sec.tm_mark:
        m = seq + RESERVE - 1
        if sec.store is not None:
            st = sec.store
            old = st.tm_mark
            st.tm_mark = m
            try:
                st.save_state()
            except OSError:
                st.tm_mark = old
                return 0
        sec.tm_mark = m
    sec.tm_seq = seq
    n = n_in + TM_OVERHEAD
    h = _ASM + _TM_HEADER
    out[0:h] = frame[0:h]
    struct.pack_into(">HIII", out, h, sa.spi, 0, 0, seq)
    ds = h + 2 + IV_LEN
    dlen = n_in - h - _TM_TRAILER
    end = ds + dlen
    out[ds:end] = frame[h : h + dlen]
    g = sa.gcm
    f = memoryview(out)[_ASM:]
    if sa.suite == SUITE_GCM:
        g.begin(f, _TM_HEADER + 2)
        g.ctr(f, ds - _ASM, end - _ASM)
    sec._tag_ok(sa, f, ds - _ASM, end - _ASM, 0x00, 0x0E, 0x00, 0x00, 0x00, _TM)
    out[end : end + MAC_LEN] = g._t
    out[end + MAC_LEN : end + MAC_LEN + 4] = frame[n_in - _TM_TRAILER : n_in - 2]
    c = crc16(out, _ASM, n - 2)
    out[n - 2] = c >> 8
    out[n - 1] = c & 0xFF
    return n
