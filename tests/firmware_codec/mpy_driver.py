# Batch driver for the firmware codec: one command per stdin line, one answer per
# stdout line. Runs unchanged under MicroPython (the unix port, with the Pico heap
# limit) and CPython, so the tests can put hypothesis-made cases through one
# MicroPython process and compare its answers with the ground codec's.
#
# Commands (hex strings without spaces; lists comma-separated; "-" for empty):
#   crc HEX                                  -> crc as 4 hex digits
#   tcpkt HEX                                -> code apid flags count ack svc sub src data end
#   tmpkt apid seq msg dest coarse fine svc sub HEX -> packet hex
#   tcbuild bypass control scid vcid ns HEX  -> frame hex
#   tchdr HEX                                -> bypass control scid vcid length ns
#   deframe max_len SIZES HEX                -> frames(hex,...) ok crc len hdr garbage pending
#   sa KEYS window                           -> ok       (KEYS: spi:hex,spi:hex)
#   verify HEX                               -> reason spi seq data_hex
#   commit spi seq                           -> ok
#   tmframes scid vcid frame_len OPS         -> frames hex,...  OPS: p:HEX | f | i | c:CLCW
#   dload PATH                               -> hash (a dictionary file)
#   dcheck svc sub HEX                       -> code HEX(values repacked) | none
#   quit
import struct
import sys
from binascii import hexlify, unhexlify

from firmware_py.crc16 import crc16
from firmware_py.dictionary import Dictionary
from firmware_py.sdls import Security
from firmware_py.spacepacket import TcPacket, TmPacketBuilder
from firmware_py.tc_frame import TcDeframer, build_frame, parse_header
from firmware_py.tm_frame import TmFramer


def _hx(b):
    return hexlify(b).decode() if len(b) else "-"


def _bin(s):
    return b"" if s == "-" else unhexlify(s)


class Driver:
    def __init__(self):
        self.sec = None
        self.pkt = TcPacket()
        self.dict = None

    def handle(self, line):
        w = line.split()
        op = w[0]
        if op == "crc":
            return f"{crc16(_bin(w[1])):04x}"
        if op == "tcpkt":
            b = _bin(w[1])
            p = self.pkt
            code = p.parse(b)
            if code:
                return str(code)
            return f"0 {p.apid} {p.seq_flags} {p.seq_count} {p.ack} {p.service} {p.subservice} {p.source_id} {_hx(b[p.data_start : p.data_end])} {p.end}"
        if op == "tmpkt":
            v = [int(x) for x in w[1:9]]
            coarse, fine = v[4], v[5]
            t = TmPacketBuilder(v[0], lambda: (coarse, fine), 600, v[3])
            t.seq_count = v[1]
            t.msg_count = v[2]
            return _hx(t.build(v[6], v[7], _bin(w[9])))
        if op == "tcbuild":
            v = [int(x) for x in w[1:6]]
            buf = bytearray(1100)
            n = build_frame(buf, v[0], v[1], v[2], v[3], v[4], _bin(w[6]))
            return _hx(buf[0:n])
        if op == "tchdr":
            return " ".join(str(x) for x in parse_header(_bin(w[1])))
        if op == "deframe":
            out = []
            d = TcDeframer(int(w[1]), lambda m: out.append(_hx(m)))
            s = _bin(w[3])
            i = 0
            sizes = [int(x) for x in w[2].split(",")]
            k = 0
            while i < len(s):
                n = sizes[k % len(sizes)]
                k += 1
                d.feed(s[i : i + n])
                i += n
            return "{} {} {} {} {} {} {}".format(
                ",".join(out) or "-", d.frames_ok, d.bad_crc, d.bad_length, d.bad_header,
                d.garbage, d.pending,
            )
        if op == "sa":
            keys = {}
            for kv in w[1].split(","):
                spi, hx = kv.split(":")
                keys[int(spi)] = unhexlify(hx)
            self.sec = Security(keys, int(w[2]))
            return "ok"
        if op == "verify":
            f = _bin(w[1])
            s = self.sec
            r = s.verify(f, len(f))
            return f"{r} {s.spi} {s.seq} {_hx(f[s.data_start : s.data_end])}"
        if op == "commit":
            self.sec.commit(int(w[1]), int(w[2]))
            return "ok"
        if op == "tmframes":
            out = []
            clcw = [0]
            fr = TmFramer(int(w[1]), int(w[2]), int(w[3]), lambda m: out.append(_hx(m)), lambda: clcw[0])
            for o in w[4].split(","):
                if o.startswith("p:"):
                    fr.put(_bin(o[2:]))
                elif o.startswith("c:"):
                    clcw[0] = int(o[2:])
                elif o == "f":
                    fr.flush()
                elif o == "i":
                    fr.idle()
            return ",".join(out) or "-"
        if op == "dload":
            self.dict = Dictionary(w[1])
            return str(self.dict.hash)
        if op == "dcheck":
            e = self.dict.command(int(w[1]), int(w[2]))
            if e is None:
                return "none"
            b = _bin(w[3])
            code, values = self.dict.check(e, b, 0, len(b))
            if code:
                return str(code)
            return "0 " + _hx(struct.pack(e[1], *values))
        return "error unknown command " + op


def main():
    d = Driver()
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        if line == "quit":
            break
        try:
            print(d.handle(line))
        except Exception as e:  # report, keep the batch going
            print(f"error {type(e).__name__} {e}")


if __name__ == "__main__":
    main()
