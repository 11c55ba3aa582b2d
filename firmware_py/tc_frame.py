# TC transfer frames (CCSDS 232.0-B) as the rover receives them: the 5-octet header,
# the stream deframer, and a small builder for on-board tests and loopbacks.
#
# Header, big-endian: version 2b (0), bypass 1b, control command 1b, spare 2b,
# SCID 10b, VCID 6b, frame length 10b (= total octets - 1), N(S) 8b; then the data
# field; then the FECF (CRC-16/CCITT-FALSE over everything before it).
# On the serial stream each frame follows the start sequence EB 90.
#
#   parse_header(frame) -> (bypass, control, scid, vcid, length, ns)
#       length is the total frame length in octets (header value + 1).
#   build_frame(buf, bypass, control, scid, vcid, ns, data) -> n
#       writes header + data + FECF into buf (bytearray), returns the frame length.
#   TcDeframer(max_len=1024, on_frame=None)
#       .feed(chunk, n=-1)  chunk: bytes/bytearray/memoryview of any size (n octets).
#       Hunts EB 90, reads the header's length, checks the FECF, and calls
#       on_frame(memoryview of the whole frame, FECF included) for each good frame.
#       The memoryview points into the deframer's own buffer: use or copy it before
#       returning. After a bad frame the hunt resumes one octet after its start
#       sequence, so a frame hidden inside a false one is still found.
#       Counters: frames_ok, bad_crc, bad_header (version != 0), bad_length (length
#       field < 7 or > max_len), garbage (octets dropped). Every octet fed is in a
#       good frame (start sequence included), counted in garbage, or .pending; the
#       same accounting as the ground's protocols.stream.TcDeframer.
#       No allocation per received octet: a memoryview per chunk (none when given
#       one) and one per good frame.
#   .pending  octets held (partial start sequence or partial frame)
#   .reset()  drop any partial frame (counters kept)
from firmware_py.compat import const
from firmware_py.crc16 import crc16

HEADER_LEN = const(5)
FECF_LEN = const(2)
MIN_FRAME = const(7)
MAX_FRAME = const(1024)

_SYNC0 = const(0xEB)
_SYNC1 = const(0x90)


def parse_header(f):
    b1 = f[1]
    return (
        (f[0] >> 5) & 1,
        (f[0] >> 4) & 1,
        ((f[0] & 3) << 8) | b1,
        f[2] >> 2,
        (((f[2] & 3) << 8) | f[3]) + 1,
        f[4],
    )


def build_frame(buf, bypass, control, scid, vcid, ns, data):
    n = HEADER_LEN + len(data) + FECF_LEN
    ln = n - 1
    buf[0] = (bypass << 5) | (control << 4) | ((scid >> 8) & 3)
    buf[1] = scid & 0xFF
    buf[2] = ((vcid & 0x3F) << 2) | ((ln >> 8) & 3)
    buf[3] = ln & 0xFF
    buf[4] = ns & 0xFF
    buf[HEADER_LEN : HEADER_LEN + len(data)] = data
    c = crc16(buf, 0, n - 2)
    buf[n - 2] = c >> 8
    buf[n - 1] = c & 0xFF
    return n


class TcDeframer:
    def __init__(self, max_len=MAX_FRAME, on_frame=None):
        self.max_len = max_len
        self.on_frame = on_frame
        self._buf = bytearray(max_len)
        self._mv = memoryview(self._buf)
        # Octets of a rejected frame are copied here and hunted through again.
        self._back = bytearray(max_len)
        self._back_mv = memoryview(self._back)
        self.frames_ok = 0
        self.bad_crc = 0
        self.bad_length = 0
        self.bad_header = 0
        self.garbage = 0
        self.reset()

    # Forget any partial frame and hunt again (counters are kept).
    def reset(self):
        self._hunting = True
        self._prev = -1
        self._pos = 0
        self._need = 1
        self._start = 0

    # Octets held: the last octet seen while hunting (it may start a start
    # sequence), or a partial frame with its start sequence.
    @property
    def pending(self):
        if self._hunting:
            return 1 if self._prev >= 0 else 0
        return self._pos + 2

    def feed(self, chunk, n=-1):
        if n < 0:
            n = len(chunk)
        if n:
            if not isinstance(chunk, memoryview):
                chunk = memoryview(chunk)
            self._run(chunk, n, False)

    def _run(self, src, n, backlog):
        i = 0
        buf = self._buf
        while i < n:
            if self._hunting:
                prev = self._prev
                g = 0
                while i < n:
                    b = src[i]
                    i += 1
                    if b == _SYNC1 and prev == _SYNC0:
                        self._hunting = False
                        self._pos = 0
                        self._need = 1
                        self._start = i
                        prev = -1
                        break
                    # The octet before b starts no marker: it is garbage. The last
                    # octet stays pending until the next one is seen.
                    if prev >= 0:
                        g += 1
                    prev = b
                self._prev = prev
                self.garbage += g
                continue
            pos = self._pos
            k = self._need - pos
            if k > n - i:
                k = n - i
            if k > 8:
                self._mv[pos : pos + k] = src[i : i + k]
                i += k
                pos += k
            else:  # header octets: a loop allocates no slice objects
                for _ in range(k):
                    buf[pos] = src[i]
                    pos += 1
                    i += 1
            self._pos = pos
            if pos < self._need:
                continue
            if pos == 1:
                if buf[0] >> 6 == 0:
                    self._need = 4
                    continue
                self.bad_header += 1
            elif pos == 4:
                ln = (((buf[2] & 3) << 8) | buf[3]) + 1
                if MIN_FRAME <= ln <= self.max_len:
                    self._need = ln
                    continue
                self.bad_length += 1
            elif crc16(buf, 0, pos) == 0:
                self.frames_ok += 1
                self._hunting = True
                self._prev = -1
                if self.on_frame is not None:
                    self.on_frame(self._mv[0:pos])
                continue
            else:
                self.bad_crc += 1
            # Bad frame: its start sequence is garbage; hunt again from the octet
            # after it.
            self.garbage += 2
            self._hunting = True
            self._prev = -1
            if backlog:
                i = self._start
            else:
                self._back_mv[0:pos] = self._mv[0:pos]
                self._run(self._back_mv, pos, True)
