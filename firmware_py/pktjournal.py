# The packet store's journal (firmware_py.pktstore): the reports and events the rover sent,
# on flash, so that after a reboot (soft reset, watchdog, power cut) the ground can still
# retrieve what it missed before it, and the packet sequence count goes on where it was.
#
# Two files (`pktstore.0`, `pktstore.1`) of at most `octets` each, in rotation; each starts
# with a 6-octet header (b"PJ", generation u16, CRC-16) and holds records appended one by
# one, each flushed (and fsync'd where the port has it, as firmware_py.params does):
#   - a non-housekeeping TM packet as sent: its primary header gives its length and its PUS
#     CRC-16 (ECSS packet error control) checks it whole, so a record costs no octet more;
#   - a sequence mark (0xFF, count u16, CRC-16): the counts below it may have been used.
#     Written when the count comes within SEQ_AHEAD/2 of the last mark, as count + SEQ_AHEAD,
#     so a reboot continues from the last mark (skipping at most SEQ_AHEAD unused counts,
#     which the ground asks for once and learns were never stored).
# A reader stops at the first record that does not check: a power cut mid-append loses at
# most that record. A boot appends to the newest file if it ended cleanly, else starts the
# other one (a new generation, its header first: a cut there leaves the older file whole);
# a full file does the same. Reloading reads each record straight into the store's ring:
# nothing file-sized is allocated at boot, nothing at all per record appended.
#
# Flash: at most 2 x octets of files (littlefs on rp2: 2 blocks of 4 KB for 2 x 2 KB).
# Wear, at the file level: each journaled packet (about 20-40 octets) and each mark (5
# octets) is one append and one flush (on littlefs, one metadata commit). An idle rover (HK
# at 1 Hz, nothing else) writes a mark every SEQ_AHEAD/2 s: 56 marks, 280 octets an hour; a
# rover commanded every 20 s through a lossy relay, with the ground's TM_RETRIEVE and their
# reports, 1,100-1,400 appends and 26-34 KB an hour (tests/bench/bench_store.py measures it:
# journal_octets_per_hour). On rp2 littlefs programs whole 256-octet pages, a data page and a
# metadata commit a flush: up to about 0.7 MB an hour reach the chip, which littlefs spreads
# over the filesystem's blocks (about 1.4 MB at 100,000 erase cycles: some 20 years).
# No filesystem, or a write that fails: the store stays RAM only from then on (the count
# restarts at the next boot), and its `ram_note` says why, once (event TM_STORE_RAM_ONLY).
#
#   Journal(store, octets=2048)
#   .open(root) -> the sequence count to continue from (0 when the journal failed);
#                  reloads the files into the store and attaches itself (store.journal)
#   .put(pkt, service)   the store calls it for every packet sent
#   .close()
#   Counters: reloaded (packets read back at boot), written (octets), records
import os

from firmware_py.compat import const
from firmware_py.crc16 import crc16
from firmware_py.params import join

SEQ_AHEAD = const(128)  # sequence counts reserved by a mark
_SEQ_MASK = const(0x3FFF)
_HK_SERVICE = const(3)
_MARK = const(0xFF)  # a mark record's first octet (a TM packet's is 0x08..0x0F)
_HDR_LEN = const(6)
_MARK_LEN = const(5)
_REC_MAX = const(540)  # the longest record: a TM packet of 512 data octets (6 + 13 + 512 + 2)
_NAMES = ("pktstore.0", "pktstore.1")
RAM_NO_FS = const(1)
RAM_WRITE_ERROR = const(2)

_fsync = getattr(os, "fsync", None)


def _sync(f):
    f.flush()
    if _fsync is not None and hasattr(f, "fileno"):
        _fsync(f.fileno())


class Journal:
    def __init__(self, store, octets=2048):
        self.st = store
        self.octets = octets
        self._f = None  # the file being appended to
        self._root = ""
        self._idx = 0  # which of _NAMES
        self._gen = 0
        self._size = 0
        self._mark = 0  # the last sequence mark written
        self._mbuf = bytearray(_MARK_LEN)
        self._hbuf = bytearray(_HDR_LEN)
        self.reloaded = 0
        self.written = 0
        self.records = 0

    # Every packet sent: a mark when the count nears the last one; a non-housekeeping
    # packet as a record.
    def put(self, pkt, service):
        seq = ((pkt[2] << 8) | pkt[3]) & _SEQ_MASK
        d = (self._mark - seq) & _SEQ_MASK
        if d <= SEQ_AHEAD // 2 or d > SEQ_AHEAD:
            self._write_mark((seq + SEQ_AHEAD) & _SEQ_MASK)
        if service != _HK_SERVICE and self._f is not None:
            self._append(pkt)

    def _fail(self, why, e=None):
        f = self._f
        self._f = None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
        st = self.st
        st.journal = None
        if st.ram_note is None:
            st.ram_note = (why, e.args[0] if e is not None and e.args and isinstance(e.args[0], int) else 0)

    def _append(self, rec):
        n = len(rec)
        try:
            if self._size + n > self.octets:
                self._rotate()
            self._f.write(rec)
            _sync(self._f)
        except OSError as e:
            self._fail(RAM_WRITE_ERROR, e)
            return
        self._size += n
        self.written += n
        self.records += 1

    def _write_mark(self, m):
        b = self._mbuf
        b[0] = _MARK
        b[1] = m >> 8
        b[2] = m & 0xFF
        c = crc16(b, 0, 3)
        b[3] = c >> 8
        b[4] = c & 0xFF
        self._append(b)
        self._mark = m

    # Start the other file: a new generation, its header first (a cut here leaves the
    # older file whole: a header that does not check is an empty file).
    def _rotate(self):
        if self._f is not None:
            self._f.close()
            self._f = None
        self._idx ^= 1
        self._gen = (self._gen + 1) & 0xFFFF
        h = self._hbuf
        h[0] = 0x50
        h[1] = 0x4A
        h[2] = self._gen >> 8
        h[3] = self._gen & 0xFF
        c = crc16(h, 0, 4)
        h[4] = c >> 8
        h[5] = c & 0xFF
        f = open(join(self._root, _NAMES[self._idx]), "wb")
        self._f = f
        f.write(h)
        _sync(f)
        self._size = _HDR_LEN
        self.written += _HDR_LEN

    # The generation in a journal file's header, or -1 (no file, or a header that does not check).
    def _generation(self, path):
        h = self._hbuf
        try:
            with open(path, "rb") as f:
                n = f.readinto(h)
        except OSError:
            return -1
        if n != _HDR_LEN or h[0] != 0x50 or h[1] != 0x4A or crc16(h, 0, _HDR_LEN) != 0:
            return -1
        return (h[2] << 8) | h[3]

    # Read one journal file's records straight into the ring (no buffer of its own: nothing
    # file-sized is allocated at boot). Returns (octets of good records with the header,
    # ended cleanly, the count to continue from).
    def _load(self, path, nxt):
        st = self.st
        h = self._hbuf
        hv = memoryview(h)
        ring = st._ring
        mv = st._mv
        size = _HDR_LEN
        with open(path, "rb") as f:
            f.readinto(h)
            while True:
                got = f.readinto(hv[0:1])
                if not got:
                    return size, True, nxt
                k = h[0]
                if k == _MARK:
                    m = self._mbuf
                    m[0] = k
                    if f.readinto(memoryview(m)[1:_MARK_LEN]) != _MARK_LEN - 1 or crc16(m, 0, _MARK_LEN) != 0:
                        break
                    size += _MARK_LEN
                    nxt = (m[1] << 8) | m[2]
                    continue
                if k & 0xF8 != 0x08 or f.readinto(hv[1:6]) != 5:
                    break
                ln = ((h[4] << 8) | h[5]) + 7
                if ln > _REC_MAX or ln > st.size:
                    break
                w = st._place(ln)
                mv[w : w + 6] = h
                if f.readinto(mv[w + 6 : w + ln]) != ln - 6 or crc16(ring, w, w + ln) != 0:
                    break
                st._commit(w, ln)
                self.reloaded += 1
                size += ln
                s = (((h[2] << 8) | h[3]) + 1) & _SEQ_MASK
                if nxt < 0 or (s - nxt) & _SEQ_MASK < 0x2000:
                    nxt = s
        return size, False, nxt

    # At boot: reload what the journal holds into the ring (older file first), then journal
    # from here on. Returns the sequence count to continue from (0 when RAM only).
    def open(self, root):
        self._root = root
        self.st.journal = self
        paths = (join(root, _NAMES[0]), join(root, _NAMES[1]))
        gens = (self._generation(paths[0]), self._generation(paths[1]))
        order = [i for i in (0, 1) if gens[i] >= 0]
        if len(order) == 2 and (gens[0] - gens[1]) & 0xFFFF < 0x8000:
            order = [1, 0]  # the older generation first
        nxt = -1
        clean = False
        size = 0
        for i in order:
            try:
                size, clean, nxt = self._load(paths[i], nxt)
            except OSError:
                size, clean = 0, False
        if nxt < 0:
            nxt = 0
        try:
            if order and clean and size + _MARK_LEN <= self.octets:
                # the newest file ended cleanly: append to it
                i = order[-1]
                self._idx, self._gen, self._size = i, gens[i], size
                self._f = open(paths[i], "ab")
            else:
                if order:
                    self._idx, self._gen = order[-1], gens[order[-1]]
                else:
                    self._idx, self._gen = 1, 0xFFFF  # the first file: pktstore.0, generation 0
                self._rotate()
        except OSError as e:
            self._fail(RAM_NO_FS, e)
            return 0
        self._write_mark((nxt + SEQ_AHEAD) & _SEQ_MASK)
        if self._f is None:
            return 0
        return nxt

    def close(self):
        if self._f is not None:
            try:
                self._f.close()
            except OSError:
                pass
            self._f = None

