# Packet store (in the spirit of ECSS-E-ST-70-41C service 15): the rover keeps its
# recent TM packets, as sent, so the ground can ask again for what the link lost.
#
# What is kept: every packet but housekeeping (verification reports, events, ping and
# parameter reports), and one housekeeping report in `hk_every` (3/25 decimated).
# Where: one preallocated ring of `size` octets holding the packets back to back, and
# an index of `slots` entries (sequence count, offset, length) in arrays: nothing is
# allocated per packet. When the ring or the index is full the oldest packets go.
#
# Across a reboot, where the board has a filesystem: firmware_py.pktjournal journals the
# reports and events as they are sent, and at boot reloads them into the ring and gives the
# sequence count to continue from (board setting tm_store_journal_octets; 0 or absent: RAM
# only, and the count restarts at each boot).
#
# Retrieval (TM_RETRIEVE apid first_seq count): the stored packets whose sequence count
# lies in [first_seq, first_seq + count) (mod 2^14) are sent again, unchanged (their
# own sequence count and time), on the store's own virtual channel, at lower priority:
# the link pumps one store frame per poll and only when the live channel has nothing
# waiting. At the end of the range the store's frame is flushed and on_done(token) sends
# the retrieval report (TM 15/10: apid, first_seq, count, packets sent, u16 each) and
# completes the command (TM 1/7), both on the live channel after the retrieved packets:
# the ground then knows that what it still misses of the range is not in the store.
#
#   PktStore(size=4096, slots=96, hk_every=10)   make it first: the ring is one block
#       (the rover's: board settings tm_store_octets, tm_store_packets, tm_store_hk_every;
#       4096, 96 and 60 by default: HK at 1 Hz kept once a minute, so the ring spans a
#       15-minute relay outage)
#   .attach(framer)   a firmware_py.tm_frame.TmFramer on the store's virtual channel
#   .put(pkt, service)   keep one TM packet (a memoryview of exactly the packet; the link
#                        calls it for each packet it sends)
#   .request(first, count, token) -> 0, or 6 (BUSY: a retrieval is running)
#   .pump() -> True while a retrieval is running: sends up to one frame's worth of packets
#   .find(seq) -> the slot index of a stored sequence count, or -1
#   .on_done(token)  set by the app: reports the retrieval and completes TM_RETRIEVE
#   .sent            packets of the last retrieval sent again
#   .journal         a firmware_py.pktjournal.Journal, or None (RAM only)
#   .ram_note        None, or (why, errno) when a journal was lost (why: 1 no filesystem,
#                    2 write error); the app reports it (event TM_STORE_RAM_ONLY) and
#                    sets it to () so it is said once
#   Counters: stored, evicted, retrieved (packets sent again), count (packets held)
from array import array

from firmware_py.compat import const

_SEQ_MASK = const(0x3FFF)
_HK_SERVICE = const(3)
_F_BUSY = const(6)


class PktStore:
    def __init__(self, size=4096, slots=96, hk_every=10):
        self.framer = None
        self.frame_budget = 0
        self.size = size
        self.slots = slots
        self.hk_every = hk_every
        self._ring = bytearray(size)
        self._mv = memoryview(self._ring)
        self._seq = array("H", bytes(2 * slots))
        self._off = array("H" if size <= 0x10000 else "I", bytes((2 if size <= 0x10000 else 4) * slots))
        self._len = array("H", bytes(2 * slots))
        self._tail = 0  # slot of the oldest packet
        self.count = 0
        self._w = 0  # ring offset for the next packet
        self._hk = 0
        self.stored = 0
        self.evicted = 0
        self.retrieved = 0
        self.on_done = None
        self.token = None
        self.active = False
        self._first = 0
        self._n = 0
        self._next = 0  # distance from _first of the next sequence count to send
        self.sent = 0
        self.journal = None
        self.ram_note = None  # (why, errno): the journal failed, not yet reported

    def attach(self, framer):
        self.framer = framer
        self.frame_budget = framer.data_len

    def _evict(self):
        self._tail = (self._tail + 1) % self.slots
        self.count -= 1
        self.evicted += 1

    # Keep one packet; a housekeeping report only one time in hk_every (the journal, if
    # any, sees every packet first).
    def put(self, pkt, service):
        j = self.journal
        if j is not None:
            j.put(pkt, service)
        self._keep(pkt, service)

    def _keep(self, pkt, service):
        if service == _HK_SERVICE:
            self._hk += 1
            if self._hk < self.hk_every:
                return
            self._hk = 0
        n = len(pkt)
        if n > self.size or n < 6:
            return
        w = self._place(n)
        self._mv[w : w + n] = pkt
        self._commit(w, n)

    # Where the next n octets go: the oldest packets in the way are dropped.
    def _place(self, n):
        w = self._w
        if w + n > self.size:
            # the rest of the ring is too short: its packets are the oldest, drop them
            while self.count and self._off[self._tail] >= w:
                self._evict()
            w = 0
        while self.count and self._off[self._tail] >= w and self._off[self._tail] < w + n:
            self._evict()
        if self.count == self.slots:
            self._evict()
        return w

    # The packet now at ring offset w (n octets) joins the index.
    def _commit(self, w, n):
        r = self._ring
        i = (self._tail + self.count) % self.slots
        self._seq[i] = ((r[w + 2] << 8) | r[w + 3]) & _SEQ_MASK
        self._off[i] = w
        self._len[i] = n
        self.count += 1
        self.stored += 1
        w += n
        self._w = 0 if w >= self.size else w

    def find(self, seq):
        s = self.slots
        for k in range(self.count):
            i = (self._tail + k) % s
            if self._seq[i] == seq:
                return i
        return -1

    @property
    def first(self):
        return self._first

    @property
    def range_count(self):
        return self._n

    def request(self, first, count, token=None):
        if self.active:
            return _F_BUSY
        self._first = first & _SEQ_MASK
        self._n = count
        self._next = 0
        self.sent = 0
        self.token = token
        self.active = True
        return 0

    # Send the next stored packets of the range, at most one frame's data field of them.
    def pump(self):
        if not self.active:
            return False
        s = self.slots
        fr = self.framer
        budget = self.frame_budget
        first = self._first
        n = self._n
        sent = False
        k = 0
        while k < self.count:
            i = (self._tail + k) % s
            k += 1
            d = (self._seq[i] - first) & _SEQ_MASK
            if d < self._next or d >= n:
                continue
            ln = self._len[i]
            if sent and ln > budget:
                return True  # the rest next poll
            o = self._off[i]
            fr.put(self._mv[o : o + ln], ln)
            self.retrieved += 1
            self.sent += 1
            self._next = d + 1
            budget -= ln
            sent = True
        # the whole range is out
        fr.flush()
        self.active = False
        tok = self.token
        self.token = None
        if self.on_done is not None:
            self.on_done(tok)
        return False

    def cancel(self):
        self.active = False
        self.token = None
