# TM transfer frames (CCSDS 132.0-B) as the rover sends them: fixed length, the CLCW
# in the operational control field, FECF, each written after the attached sync marker
# 1A CF FC 1D.
#
# Frame: header(6) | data field (frame_len - 12) | OCF = CLCW (4) | FECF (2).
# Header, big-endian: version 2b (0), SCID 10b, VCID 3b, OCF flag 1b (1), master
# channel frame count u8, VC frame count u8, data field status u16 = sec header 0,
# sync 0, order 0, segment length id 3, first header pointer 11b (offset of the first
# packet that starts in this frame; 0x7FF none starts here; 0x7FE idle data only).
# Packets span frames. Padding a frame uses an idle packet (APID 0x7FF, seq 0, fill
# 0x55); when fewer than 7 octets are left the idle packet also fills the whole next
# frame. The first header pointer counts an idle packet as a packet (132.0-B 4.1.4.2).
# Byte for byte what the ground's protocols.tm_frame.TmMultiplexer makes.
#
#   TmFramer(scid, vcid, frame_len=256, write=None, clcw=None, asm=True)
#       write(memoryview): called with each finished frame (ASM + frame when asm),
#       pointing into the framer's buffer: send or copy before returning.
#       clcw() -> the 32-bit CLCW for the frame being closed (None: 0).
#   .put(packet, n=-1)   append a whole packet; full frames are written as they fill
#   .flush()             pad and write the current frame if it holds packet data
#   .idle()              write one frame now: the current frame padded out if it holds
#                        anything, else an idle-only frame (FHP 0x7FE); both carry the CLCW
#   .pending             packet octets waiting in the current frame
#   .data_len            data field octets per frame (frame_len - 12)
#   Counters: frames (written), idle_frames (idle-only), packets, mc, vc (next counts).
import struct

from firmware_py.compat import const
from firmware_py.crc16 import crc16

HEADER_LEN = const(6)
OCF_LEN = const(4)
FECF_LEN = const(2)
ASM_LEN = const(4)
FHP_NONE = const(0x7FF)
FHP_IDLE = const(0x7FE)
IDLE_APID = const(0x7FF)
IDLE_FILL = const(0x55)
_MIN_IDLE = const(7)
_DFS = const(0x1800)  # segment length id 3, no secondary header, sync 0, order 0


class TmFramer:
    def __init__(self, scid, vcid, frame_len=256, write=None, clcw=None, asm=True):
        self.frame_len = frame_len
        self.write = write
        self.clcw = clcw
        self._id = ((scid & 0x3FF) << 4) | ((vcid & 7) << 1) | 1
        b = bytearray(ASM_LEN + frame_len)
        b[0] = 0x1A
        b[1] = 0xCF
        b[2] = 0xFC
        b[3] = 0x1D
        self._b = b
        mv = memoryview(b)
        self._f = mv[ASM_LEN:]
        self._out = mv if asm else self._f
        self._end = frame_len - OCF_LEN - FECF_LEN
        self.data_len = self._end - HEADER_LEN
        self._idle = bytearray(6)
        # Idle fill pattern, copied by slices (a per-octet loop is 5x slower).
        self._pattern = memoryview(bytes([IDLE_FILL]) * self.data_len)
        self._pos = HEADER_LEN
        self._fhp = FHP_NONE
        self.mc = 0
        self.vc = 0
        self.frames = 0
        self.idle_frames = 0
        self.packets = 0

    @property
    def pending(self):
        return self._pos - HEADER_LEN

    def put(self, pkt, n=-1):
        if n < 0:
            n = len(pkt)
        if n == 0:
            return
        if not isinstance(pkt, memoryview):
            pkt = memoryview(pkt)
        self.packets += 1
        if self._fhp == FHP_NONE:
            self._fhp = self._pos - HEADER_LEN
        self._copy(pkt, n)

    def flush(self):
        if self._pos > HEADER_LEN:
            self._pad()

    def idle(self):
        if self._pos > HEADER_LEN:
            self._pad()
            return
        self._f[HEADER_LEN : self._end] = self._pattern
        self.idle_frames += 1
        self._write_frame(FHP_IDLE)

    def _copy(self, src, n):
        f = self._f
        end = self._end
        i = 0
        while i < n:
            pos = self._pos
            k = end - pos
            if k > n - i:
                k = n - i
            f[pos : pos + k] = src[i : i + k]
            i += k
            pos += k
            self._pos = pos
            if pos == end:
                self._emit()

    def _fill(self, n):
        f = self._f
        end = self._end
        while n > 0:
            pos = self._pos
            k = end - pos
            if k > n:
                k = n
            f[pos : pos + k] = self._pattern[0:k]
            n -= k
            self._pos = pos + k
            if self._pos == end:
                self._emit()

    # Complete the frame with an idle packet; one that would be shorter than 7 octets
    # also fills the whole next frame (as the ground multiplexer does). The idle
    # packet is a packet: the first header pointer may point at it.
    def _pad(self):
        if self._fhp == FHP_NONE:
            self._fhp = self._pos - HEADER_LEN
        r = self._end - self._pos
        ln = r if r >= _MIN_IDLE else r + self.data_len
        struct.pack_into(">HHH", self._idle, 0, IDLE_APID, 0xC000, ln - _MIN_IDLE)
        self._copy(self._idle, 6)
        self._fill(ln - 6)

    def _emit(self):
        self._write_frame(self._fhp)

    def _write_frame(self, fhp):
        f = self._f
        struct.pack_into(">HBBH", f, 0, self._id, self.mc, self.vc, _DFS | fhp)
        word = self.clcw() if self.clcw is not None else 0
        struct.pack_into(">I", f, self._end, word)
        n = self.frame_len - FECF_LEN
        c = crc16(f, 0, n)
        f[n] = c >> 8
        f[n + 1] = c & 0xFF
        self.mc = (self.mc + 1) & 0xFF
        self.vc = (self.vc + 1) & 0xFF
        self.frames += 1
        self._pos = HEADER_LEN
        self._fhp = FHP_NONE
        if self.write is not None:
            self.write(self._out)
