# The command/telemetry/event dictionary as the rover needs it: the canonical
# dictionary bytes loaded from the board's filesystem, their short hash, and compact
# tables for checking commands and packing housekeeping and events. The parsed JSON
# is dropped after load; only the tables stay on the heap.
#
# Hash: first 4 octets of SHA-256 over the bytes loaded, as u32 big-endian (the file
# is written in canonical form: json.dumps(d, sort_keys=True, separators=(",", ":"))).
#
#   Dictionary(path="dictionary.json")
#   .hash                                  u32
#   .command(service, subservice) -> entry or None
#       entry = (name, fmt, size, ranges, enums, tail)
#       fmt: struct format of the fixed arguments (">" + one char per argument),
#       size: its octets; ranges: per argument (lo, hi) or None (f32 bounds rounded
#       to f32; an f32 without a range gets the finite f32 range, so NaN and inf fail); enums: per argument a tuple of valid values or None; tail: True when
#       the last argument is "tc" (the rest of the application data is a TC packet,
#       starting at size octets into the data).
#   .check(entry, buf, start, end) -> (code, values)
#       code 0, or failure code BAD_LENGTH (2), OUT_OF_RANGE (3), BAD_ENUM (12);
#       values: tuple of the fixed arguments (None unless code is 0).
#   .hk_format(sid) -> struct format of the whole HK 3/25 data (sid u16 first)
#   .hk_names(sid) -> tuple of parameter names, in order
#   .event(name) -> (event id, subservice 1..4 from severity, format with id u16 first)
#   .event_format(event_id) -> format of the whole 5/x data (id u16 first)
#   .events() -> {name: (event id, subservice, format)}
#   .commands() -> {(service << 8) | subservice: entry}
#   .params {param id: (name, lo, hi, default)}
#   .failure {name: code}      .mission {scid, tc_vcid, tm_vcid, tc_apid, tm_apid, ...}
import hashlib
import json
import struct

from firmware_py.compat import MICROPYTHON, const

FAIL_UNKNOWN_COMMAND = const(1)
FAIL_BAD_LENGTH = const(2)
FAIL_OUT_OF_RANGE = const(3)
FAIL_BAD_ENUM = const(12)

_TYPES = {"u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "i32": "i", "f32": "f"}
_F32_FINITE = (-3.4028234663852886e38, 3.4028234663852886e38)
_SEVERITY = {"info": 1, "low": 2, "medium": 3, "high": 4}


def _f32(x):
    return struct.unpack(">f", struct.pack(">f", x))[0]


def _fmt(args):
    s = ">"
    for a in args:
        t = a["type"]
        if t == "tc":
            break
        s += _TYPES[t]
    return s


# Top-level members of a JSON object: [(key, start, end)] spans of each value in raw.
# One pass over the octets; strings and nesting are skipped properly.
def _members(raw):
    out = []
    depth = 0
    in_str = False
    esc = False
    key_start = -1
    key = None
    vstart = -1
    for i in range(len(raw)):
        c = raw[i]
        if in_str:
            if esc:
                esc = False
            elif c == 0x5C:  # backslash
                esc = True
            elif c == 0x22:  # quote
                in_str = False
                if depth == 1 and key is None:
                    key = bytes(raw[key_start + 1 : i]).decode()
            continue
        if c == 0x22:
            in_str = True
            if depth == 1 and key is None:
                key_start = i
        elif c == 0x3A and depth == 1:  # colon
            vstart = i + 1
        elif c == 0x7B or c == 0x5B:  # { [
            depth += 1
        elif c == 0x7D or c == 0x5D:  # } ]
            depth -= 1
            if depth == 0 and key is not None:
                out.append((key, vstart, i))
        elif c == 0x2C and depth == 1:  # comma
            out.append((key, vstart, i))
            key = None
    return out


# Each section is parsed and reduced inside its own function, so no stale reference
# to a parsed tree survives in the caller's frame and gc.collect() frees it.
def _json(raw, spans, name):
    import gc

    gc.collect()
    a, b = spans[name]
    # MicroPython parses a memoryview in place; CPython's json wants bytes.
    return json.loads(memoryview(raw)[a:b] if MICROPYTHON else raw[a:b])


def _enums(raw, spans):
    enums = {}
    for name, values in _json(raw, spans, "enums").items():
        enums[name] = tuple(sorted(int(k) for k in values))
    return enums


def _commands(raw, spans, enums):
    cmds = {}
    for c in _json(raw, spans, "commands"):
        args = c["args"]
        fmt = _fmt(args)
        tail = len(args) > 0 and args[-1]["type"] == "tc"
        ranges = []
        evals = []
        for a in args:
            if a["type"] == "tc":
                break
            r = a.get("range")
            if a["type"] == "f32":
                # An f32 without a range must still be finite.
                r = (_f32(r[0]), _f32(r[1])) if r is not None else _F32_FINITE
            elif r is not None:
                r = (r[0], r[1])
            ranges.append(r)
            e = a.get("enum")
            evals.append(enums[e] if e else None)
        key = (c["service"] << 8) | c["subservice"]
        cmds[key] = (c["name"], fmt, struct.calcsize(fmt), tuple(ranges), tuple(evals), tail)
    return cmds


def _housekeeping(raw, spans):
    hk = {}
    for h in _json(raw, spans, "housekeeping"):
        p = h["parameters"]
        hk[h["sid"]] = (">H" + _fmt(p)[1:], tuple(x["name"] for x in p))
    return hk


def _events(raw, spans):
    ev = {}
    for e in _json(raw, spans, "events"):
        ev[e["name"]] = (e["id"], _SEVERITY[e["severity"]], ">H" + _fmt(e["args"])[1:])
    return ev


def _parameters(raw, spans):
    params = {}
    for p in _json(raw, spans, "parameters"):
        r = p["range"]
        params[p["id"]] = (p["name"], _f32(r[0]), _f32(r[1]), p["default"])
    return params


def _failures(raw, spans):
    failure = {}
    for code, f in _json(raw, spans, "failure_codes").items():
        failure[f["name"]] = int(code)
    return failure


def _mission(raw, spans):
    m = _json(raw, spans, "mission")
    mission = {}
    for k in m:
        if k not in ("name", "epoch", "time_code"):
            mission[k] = m[k]
    return mission


class Dictionary:
    def __init__(self, path="dictionary.json"):
        import gc

        with open(path, "rb") as f:
            raw = f.read()
        self.hash = struct.unpack(">I", hashlib.sha256(raw).digest()[0:4])[0]
        # One section at a time: the whole parsed tree would be several times the
        # file's size on the heap.
        spans = {}
        for key, a, b in _members(memoryview(raw)):
            spans[key] = (a, b)
        enums = _enums(raw, spans)
        self._cmds = _commands(raw, spans, enums)
        enums = None
        self._hk = _housekeeping(raw, spans)
        self._events = _events(raw, spans)
        self.params = _parameters(raw, spans)
        self.failure = _failures(raw, spans)
        self.mission = _mission(raw, spans)
        self.version = _json(raw, spans, "version")
        raw = None
        spans = None
        gc.collect()

    def command(self, service, subservice):
        return self._cmds.get((service << 8) | subservice)

    def commands(self):
        return self._cmds

    def check(self, entry, buf, start, end):
        size = entry[2]
        n = end - start
        if (n <= size) if entry[5] else (n != size):
            return FAIL_BAD_LENGTH, None
        values = struct.unpack_from(entry[1], buf, start)
        ranges = entry[3]
        evals = entry[4]
        for i in range(len(values)):
            v = values[i]
            r = ranges[i]
            # Range first, then enum (the ground's order); "not (lo <= v <= hi)" also
            # rejects NaN.
            if r is not None and not (r[0] <= v <= r[1]):
                return FAIL_OUT_OF_RANGE, None
            e = evals[i]
            if e is not None and v not in e:
                return FAIL_BAD_ENUM, None
        return 0, values

    def hk_format(self, sid):
        return self._hk[sid][0]

    def hk_names(self, sid):
        return self._hk[sid][1]

    def event(self, name):
        return self._events[name]

    def events(self):
        return self._events

    # Linear search: only event dumps need it.
    def event_format(self, event_id):
        for e in self._events.values():
            if e[0] == event_id:
                return e[2]
        raise KeyError(event_id)
