# Housekeeping (PUS service 3): TM 3/25 at a commandable period.
#
# The dictionary is the single source of truth: the report for a SID packs the
# dictionary's parameters in its order with the format firmware_py.dictionary
# derives (sid u16 first). `sources` maps each parameter name to a function
# returning its raw value (the app supplies them); a name without a source packs
# 0 and is listed in `.missing`. Values are clamped to their type's range so a
# runaway value never breaks the report.
#
#   Telemetry(fmt, names, sources, data_mv, send_data, sid=1, period_ms=1000)
#   .build() -> n     pack the report into data_mv
#   .send()           build and send one report (HK_REPORT_NOW)
#   .poll(now_ms, min_period_ms=0)   send when the period has elapsed, or at once
#                     after .due was set (the app sets it on every mode change)
#   .wait_ms(now_ms, min_period_ms=0) -> ms until the next report is due (1..1000):
#                     how long the telemetry task sleeps (the link task, which
#                     wakes at least every 100 ms, sends a .due report)
import struct

from firmware_py.compat import MICROPYTHON, const

_LIMITS = {
    "B": (0, 0xFF),
    "b": (-0x80, 0x7F),
    "H": (0, 0xFFFF),
    "h": (-0x8000, 0x7FFF),
    "I": (0, 0xFFFFFFFF),
    "i": (-0x80000000, 0x7FFFFFFF),
    "f": None,
}
_SIZES = {"B": 1, "b": 1, "H": 2, "h": 2, "I": 4, "i": 4, "f": 4}
_SVC = const(3)
_SUB = const(25)
_MAX_WAIT_MS = const(1000)


def _zero():
    return 0


class Telemetry:
    def __init__(self, fmt, names, sources, data_mv, send_data, sid=1, period_ms=1000):
        self.sid = sid
        self.data = data_mv
        self.send_data = send_data
        self.period_ms = period_ms
        chars = fmt[2:]  # after ">H"
        self.fields = []
        self.missing = []
        off = 2
        for i in range(len(names)):
            c = chars[i]
            g = sources.get(names[i])
            if g is None:
                self.missing.append(names[i])
                g = _zero
            self.fields.append((">" + c, off, g, _LIMITS[c]))
            off += _SIZES[c]
        self.size = off
        # CPython packs the whole report in one call (a tuple of the values: no matter
        # there); MicroPython packs field by field into the buffer, allocating nothing
        self._whole = None if MICROPYTHON else struct.Struct(fmt)
        self._vals = None if MICROPYTHON else [0] * (len(self.fields) + 1)
        self._last = None
        self.sent = 0
        self.due = False  # set to send one report at the next poll (mode changes)

    def build(self):
        d = self.data
        whole = self._whole
        vals = self._vals
        j = 1
        for fmt, off, g, lim in self.fields:
            v = g()
            if lim is not None:
                v = int(v)
                if v < lim[0]:
                    v = lim[0]
                elif v > lim[1]:
                    v = lim[1]
            if whole is None:
                struct.pack_into(fmt, d, off, v)
            else:
                vals[j] = v
                j += 1
        if whole is None:
            struct.pack_into(">H", d, 0, self.sid)
        else:
            vals[0] = self.sid
            whole.pack_into(d, 0, *vals)
        return self.size

    def send(self):
        n = self.build()
        self.send_data(_SVC, _SUB, n)
        self.sent += 1

    def poll(self, now_ms, min_period_ms=0):
        # min_period_ms: a floor on the period (HIBERNATE sends once a minute)
        period = self.period_ms if self.period_ms > min_period_ms else min_period_ms
        if self.due or self._last is None or (now_ms - self._last) >= period:
            self.due = False
            self._last = now_ms
            self.send()

    def wait_ms(self, now_ms, min_period_ms=0):
        if self.due or self._last is None:
            return 1
        period = self.period_ms if self.period_ms > min_period_ms else min_period_ms
        ms = period - (now_ms - self._last)
        if ms < 1:
            return 1
        return ms if ms < _MAX_WAIT_MS else _MAX_WAIT_MS
