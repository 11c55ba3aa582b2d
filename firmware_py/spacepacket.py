# Space packets (CCSDS 133.0-B-2) with PUS-C secondary headers (ECSS-E-ST-70-41C),
# the rover's side: parse the TC packets it receives, build the TM packets it sends.
#
# Primary header, 6 octets big-endian: version 3b (0), type 1b (1 TC, 0 TM), sec
# header flag 1b, APID 11b, sequence flags 2b, sequence count 14b, data length 16b
# (= data field octets - 1). Every packet ends with a CRC-16/CCITT-FALSE.
# TC secondary header: PUS version 4b (2) + ack flags 4b, service, subservice,
#   source id u16.
# TM secondary header: PUS version 4b (2) + time reference status 4b (0), service,
#   subservice, message type counter u16 (one counter per APID), destination id u16,
#   time CUC 4+2 (coarse s, fine 1/65536 s since the mission epoch, P-field implicit).
#
#   TcPacket()  reusable result holder (allocate once)
#       .parse(buf, start=0, end=-1) -> 0 or an error code below; the packet starts at
#       buf[start]; end bounds it (default len(buf)); after parse:
#         .apid .seq_flags .seq_count .ack .service .subservice .source_id
#         .packet_id (octets 0-1 u16)  .seq_ctrl (octets 2-3 u16): the request id
#         .data_start .data_end (application data span in buf, CRC excluded)
#         .end (buf index after this packet's CRC; another packet may follow)
#   TmPacketBuilder(apid=32, clock=None, max_data=512, dest_id=0)
#       clock() -> (coarse_s, fine) integers; None gives zero time.
#       .build(service, subservice, data=b"", n=-1) -> memoryview of the packet
#       .data -> memoryview of the application data area: pack_into it, then
#       .finish(service, subservice, n) -> memoryview of the packet (n data octets)
#       .pack(service, subservice, fmt, *values) -> memoryview (struct fmt into data)
#       .seq_count, .msg_count: the next values (per APID, wrap at 2^14 and 2^16).
#       The memoryview points into the builder's buffer: send or copy before the next.
import struct

from firmware_py.compat import const
from firmware_py.crc16 import crc16

# Error codes: where a dictionary failure code applies it is that code.
PKT_OK = const(0)
PKT_BAD_LENGTH = const(2)  # failure_codes BAD_LENGTH
PKT_BAD_CRC = const(5)  # failure_codes BAD_CRC
PKT_NOT_TC = const(100)  # type bit 0, or packet version != 0
PKT_NO_SEC_HEADER = const(101)  # secondary header flag clear
PKT_BAD_PUS_VERSION = const(102)  # PUS version != 2

PRIMARY_LEN = const(6)
TC_SEC_LEN = const(5)
TM_SEC_LEN = const(13)
CRC_LEN = const(2)
# A TC packet with no application data: 6 + 5 + 2.
MIN_TC = const(13)
PUS_VERSION = const(2)
ACK_ALL = const(0xF)
TM_APID = const(32)


class TcPacket:
    def __init__(self):
        self.apid = 0
        self.seq_flags = 0
        self.seq_count = 0
        self.ack = 0
        self.service = 0
        self.subservice = 0
        self.source_id = 0
        self.packet_id = 0
        self.seq_ctrl = 0
        self.data_start = 0
        self.data_end = 0
        self.end = 0

    def parse(self, b, start=0, end=-1):
        if end < 0:
            end = len(b)
        if end - start < PRIMARY_LEN:
            return PKT_BAD_LENGTH
        pid = (b[start] << 8) | b[start + 1]
        psc = (b[start + 2] << 8) | b[start + 3]
        total = ((b[start + 4] << 8) | b[start + 5]) + 1 + PRIMARY_LEN
        self.packet_id = pid
        self.seq_ctrl = psc
        self.apid = pid & 0x7FF
        self.seq_flags = psc >> 14
        self.seq_count = psc & 0x3FFF
        if pid >> 13 != 0 or not pid & 0x1000:
            return PKT_NOT_TC
        if total < MIN_TC or start + total > end:
            return PKT_BAD_LENGTH
        pend = start + total
        if crc16(b, start, pend) != 0:
            return PKT_BAD_CRC
        if not pid & 0x0800:
            return PKT_NO_SEC_HEADER
        s = start + PRIMARY_LEN
        if b[s] >> 4 != PUS_VERSION:
            return PKT_BAD_PUS_VERSION
        self.ack = b[s] & 0xF
        self.service = b[s + 1]
        self.subservice = b[s + 2]
        self.source_id = (b[s + 3] << 8) | b[s + 4]
        self.data_start = s + TC_SEC_LEN
        self.data_end = pend - CRC_LEN
        self.end = pend
        return PKT_OK


class TmPacketBuilder:
    def __init__(self, apid=TM_APID, clock=None, max_data=512, dest_id=0):
        self.apid = apid
        self.clock = clock
        self.dest_id = dest_id
        self.max_data = max_data
        self.seq_count = 0
        self.msg_count = 0
        self._hdr = PRIMARY_LEN + TM_SEC_LEN
        self._buf = bytearray(self._hdr + max_data + CRC_LEN)
        self._mv = memoryview(self._buf)
        self.data = self._mv[self._hdr : self._hdr + max_data]

    def build(self, service, subservice, data=b"", n=-1):
        if n < 0:
            n = len(data)
        if n:
            self.data[0:n] = data[0:n] if n != len(data) else data
        return self.finish(service, subservice, n)

    def pack(self, service, subservice, fmt, *values):
        struct.pack_into(fmt, self._buf, self._hdr, *values)
        return self.finish(service, subservice, struct.calcsize(fmt))

    def finish(self, service, subservice, n):
        if n > self.max_data:
            raise ValueError("TM data too long")
        b = self._buf
        total = self._hdr + n + CRC_LEN
        if self.clock is None:
            coarse = 0
            fine = 0
        else:
            coarse, fine = self.clock()
        struct.pack_into(
            ">HHHBBBHHIH",
            b,
            0,
            0x0800 | (self.apid & 0x7FF),
            0xC000 | self.seq_count,
            total - PRIMARY_LEN - 1,
            PUS_VERSION << 4,
            service,
            subservice,
            self.msg_count,
            self.dest_id,
            coarse,
            fine,
        )
        c = crc16(b, 0, total - CRC_LEN)
        b[total - 2] = c >> 8
        b[total - 1] = c & 0xFF
        self.seq_count = (self.seq_count + 1) & 0x3FFF
        self.msg_count = (self.msg_count + 1) & 0xFFFF
        return self._mv[0:total]
