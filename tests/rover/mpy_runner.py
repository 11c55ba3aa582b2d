# Stepped scenario runner: the rover and its plant in simulated time, no asyncio.
#
# MicroPython-compatible (runs under the unix port with the Pico heap limit, and on
# CPython). The ground side is built from the firmware's own codec: TC packets
# with CRC, secured Type-AD frames (Security.build_frame), fed into the rover's
# link; TM packets are tapped where they enter the TM framer, events where they are
# emitted. A board reset (Reset from the sim HAL) boots a new Rover on the same
# root folder and hal, as the power supply would.
#
#   r = Runner(root, dictionary=None, seed=1)
#   r.send(service, subservice, data=b"", ack=15) -> (packet id, seq ctrl)
#   r.run_s(seconds, until=None)     step in 50 ms periods; until() stops early
#   r.reports(req) -> [(subservice, code or None)]
#   r.events -> [(event id, args)]   r.hal.plant -> the plant's truth
import struct

from firmware_py.crc16 import crc16
from firmware_py.hal import Reset, link_pair
from firmware_py.hal.sim import SimHal
from firmware_py.params import join
from firmware_py.sdls import Security, load_keys

STEP_MS = 50


def tc_packet(seq, service, subservice, data=b"", ack=15):
    # a PUS-C TC packet (APID 1) with its CRC
    n = 6 + 5 + len(data) + 2
    b = bytearray(n)
    struct.pack_into(">HHHBBBH", b, 0, 0x1801, 0xC000 | (seq & 0x3FFF), n - 7,
                     0x20 | ack, service, subservice, 0)
    b[11 : 11 + len(data)] = data
    c = crc16(b, 0, n - 2)
    b[n - 2] = c >> 8
    b[n - 1] = c & 0xFF
    return bytes(b)


class Runner:
    def __init__(self, root, dictionary=None, seed=1, board=None):
        self.root = root
        self.board = board or {"watchdog": {"timeout_ms": 5000}}
        self.link, self.ground = link_pair(4096)
        self.hal = SimHal(self.board, self.link, seed)
        self.keys = load_keys(join(root, "keys.json"))
        self.sec = Security(self.keys)
        self.spi_seq = 0
        self.vs = 0
        self.tc_seq = 0
        self.now = 1000
        self.events = []
        self.tm = []  # (service, subservice, data)
        self.boots = 0
        self.hk_count = 0
        self.dictionary = dictionary
        self._fbuf = bytearray(1100)
        self._drain = bytearray(2048)
        self._boot()

    def _boot(self):
        import gc

        from firmware_py.app import Rover

        self.rover = None  # the old rover's heap goes before the new one is built
        gc.collect()
        self.rover = Rover(self.board, self.hal, self.root, self.link, self.dictionary)
        self.dictionary = self.rover.dictionary
        self.vs = 0
        self.boots += 1
        self.rover.events.listeners.append(self._on_event)
        fr = self.rover.link.framer
        orig = fr.put

        def put(pkt, n=-1):
            if pkt[7] != 3 and pkt[7] != 5:  # keep reports and replies; events come by listener
                b = bytes(pkt)
                self.tm.append((b[7], b[8], b[19:-2]))
            self.hk_count += pkt[7] == 3
            orig(pkt, n)

        fr.put = put
        self.rover.boot()

    def _on_event(self, eid, args):
        self.events.append((eid, tuple(args)))

    def packet(self, service, subservice, data=b"", ack=15):
        self.tc_seq += 1
        return tc_packet(self.tc_seq, service, subservice, data, ack)

    def send_packet(self, pkt):
        self.spi_seq += 1
        n = self.sec.build_frame(self._fbuf, 0, 0, 171, 1, self.vs & 0xFF, 1, self.spi_seq, pkt)
        self.vs += 1
        self.ground.write(b"\xeb\x90")
        self.ground.write(memoryview(self._fbuf)[0:n])
        return struct.unpack(">HH", pkt[0:4])

    def send(self, service, subservice, data=b"", ack=15):
        return self.send_packet(self.packet(service, subservice, data, ack))

    def step(self):
        self.now += STEP_MS
        try:
            self.rover.step(self.now)
        except Reset:
            self._boot()
        self.ground.read_into(self._drain)

    def run_s(self, seconds, until=None):
        n = int(seconds * 1000 // STEP_MS)
        for _ in range(n):
            self.step()
            if until is not None and until():
                return True
        return until() if until is not None else True

    def reports(self, req):
        out = []
        for s, sub, d in self.tm:
            if s == 1 and len(d) >= 4 and struct.unpack(">HH", d[0:4]) == tuple(req):
                out.append((sub, struct.unpack(">H", d[4:6])[0] if len(d) >= 6 else None))
        return out

    def done(self, req):
        for sub, _ in self.reports(req):
            if sub in (2, 7, 8):
                return True
        return False

    def event_ids(self):
        return [e[0] for e in self.events]
