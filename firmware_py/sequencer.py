# Time-tagged commands (PUS service 11 style): a stored, time-ordered queue.
#
# Each entry is (release time in rover seconds, a complete TC packet). The queue
# is written to `ttq.json` in the root folder on every change, atomically (write
# `ttq.json.new`, then rename), so it survives resets and power cuts; loss of
# the link does not matter since it runs on the rover clock. When the rover time
# reaches an entry's release time the packet goes to the dispatcher exactly as
# if it had come from the ground (its own verification reports follow), and a
# TT_RELEASED event is sent.
#
#   Sequencer(root, release, events, capacity=16)
#     release(buf, start, end) runs a packet (the dispatcher's on_packet)
#   .insert(release_s, packet) / .clear() / .full() / .depth
#   .poll(now_s)   release what is due
import json

from firmware_py.compat import const
from firmware_py.params import join, write_atomic

_EV_TT_RELEASED = const(18)
_FILE = "ttq.json"


def _hex(b):
    return "".join("%02x" % x for x in b)


class Sequencer:
    def __init__(self, root, release, events, capacity=16):
        self.path = join(root, _FILE)
        self.release = release
        self.events = events
        self.capacity = capacity
        self.q = []  # [(release_s, bytes)], sorted by release time
        self.released = 0

    @property
    def depth(self):
        return len(self.q)

    def full(self):
        return len(self.q) >= self.capacity

    def load(self):
        for path in (self.path, self.path + ".new"):
            try:
                with open(path) as f:
                    d = json.load(f)
                q = []
                for t, h in d["q"]:
                    q.append((int(t), bytes(bytearray.fromhex(h))))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            q.sort(key=lambda e: e[0])
            self.q = q[: self.capacity]
            return True
        return False

    def _save(self):
        write_atomic(self.path, json.dumps({"q": [[t, _hex(p)] for t, p in self.q]}))

    def insert(self, release_s, packet):
        i = len(self.q)
        while i > 0 and self.q[i - 1][0] > release_s:
            i -= 1
        self.q.insert(i, (release_s, bytes(packet)))
        self._save()

    def clear(self):
        self.q = []
        self._save()

    def poll(self, now_s):
        while self.q and self.q[0][0] <= now_s:
            t, pkt = self.q.pop(0)
            self._save()
            self.released += 1
            self.events.emit(_EV_TT_RELEASED, pkt[7] if len(pkt) > 8 else 0, pkt[8] if len(pkt) > 8 else 0, t)
            self.release(pkt, 0, len(pkt))
