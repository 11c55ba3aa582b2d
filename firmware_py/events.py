# Events (PUS service 5): TM 5/1..5/4 by severity, kept in a small ring buffer.
#
#   Events(table, send)   table: {event id: (subservice, struct fmt of the whole
#                         5/x data, u16 id first)}, as firmware_py.dictionary derives
#                         send(subservice, data_mv, n): queue a 5/x TM packet
#   .emit(eid, *args)     pack u16 id + args big-endian, remember, send
#   .dump()               resend every held event, oldest first (EVENT_DUMP 5/128)
# The ring holds the last 16 events in preallocated slots; the oldest is
# overwritten when full. `listeners` get (eid, args) for on-board use and tests.
import struct

from firmware_py.compat import const

_SLOTS = const(16)
_SLOT_LEN = const(24)


class Events:
    def __init__(self, table, send=None):
        self.table = table
        self.send = send
        self._buf = bytearray(_SLOTS * _SLOT_LEN)
        self._mv = memoryview(self._buf)
        self._len = bytearray(_SLOTS)
        self._sub = bytearray(_SLOTS)
        self._head = 0
        self.count = 0
        self.emitted = 0
        self.listeners = []


    def emit(self, eid, *args):
        ent = self.table.get(eid)
        if ent is None:
            return
        sub, fmt = ent
        i = self._head
        off = i * _SLOT_LEN
        struct.pack_into(fmt, self._buf, off, eid, *args)
        n = struct.calcsize(fmt)
        self._len[i] = n
        self._sub[i] = sub
        self._head = (i + 1) % _SLOTS
        if self.count < _SLOTS:
            self.count += 1
        self.emitted += 1
        for f in self.listeners:
            f(eid, args)
        if self.send is not None:
            self.send(sub, self._mv[off : off + n], n)

    def dump(self):
        i = (self._head - self.count) % _SLOTS
        for _ in range(self.count):
            off = i * _SLOT_LEN
            if self.send is not None:
                self.send(self._sub[i], self._mv[off : off + self._len[i]], self._len[i])
            i = (i + 1) % _SLOTS
        return self.count


def table_from(dictionary):
    # {event id: (subservice, format)} from a firmware_py.dictionary.Dictionary, in one
    # pass over its records (a lookup per name was quadratic: 0.27 s of a Pico's boot)
    t = {}
    for e in dictionary.events().values():
        t[e[0]] = (e[1], e[2])
    return t
