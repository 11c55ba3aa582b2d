# The command/telemetry/event dictionary as the rover needs it: the canonical
# dictionary bytes loaded from the board's filesystem, their short hash, and compact
# tables for checking commands and packing housekeeping and events. The parsed JSON
# is dropped after load; only the tables stay on the heap, each packed into one
# bytes object (struct-packed records; names as octets) and decoded on lookup.
#
# Hash: first 4 octets of SHA-256 over the bytes loaded, as u32 big-endian (the file
# is written in canonical form: json.dumps(d, sort_keys=True, separators=(",", ":"))).
#
#   Dictionary(path="dictionary.json")
#   .hash                                  u32
#   .command(service, subservice) -> entry or None (decoded on each call; the last
#       one is kept, so a repeated command allocates nothing)
#       entry = (name, fmt, size, ranges, enums, tail)
#       fmt: struct format of the fixed arguments (">" + one code per argument; a
#       "bytes" argument of length L is "Ls", its value the octets),
#       size: its octets; ranges: per argument (lo, hi) or None (f32 bounds rounded
#       to f32; an f32 without a range gets the finite f32 range, so NaN and inf
#       fail); enums: per argument a tuple of valid values or None; tail: True when
#       the last argument is "tc" (the rest of the application data is a TC packet,
#       starting at size octets into the data).
#   .check(entry, buf, start, end) -> (code, values)
#       code 0, or failure code BAD_LENGTH (2), OUT_OF_RANGE (3), BAD_ENUM (12);
#       values: tuple of the fixed arguments (None unless code is 0).
#   .hk_format(sid) -> struct format of the whole HK 3/25 data (sid u16 first)
#   .hk_names(sid) -> tuple of parameter names, in order (made on each call)
#   .event(name) -> (event id, subservice 1..4 from severity, format with id u16 first)
#   .event_format(event_id) -> format of the whole 5/x data (id u16 first)
#   .events() -> {name: (event id, subservice, format)}     (made on each call)
#   .commands() -> {(service << 8) | subservice: entry}     (made on each call)
#   .params {param id: (name, lo, hi, default)}  (made on each access)
#   .failure {name: code}                        (made on each access)
#   .mission {scid, tc_vcid, tm_vcid, tc_apid, tm_apid, ...}
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
        if t == "bytes":  # raw octets of a fixed length
            s += "%ds" % a["length"]
            continue
        s += _TYPES[t]
    return s


# Top-level members of a JSON object: [(key, start, end)] spans of each value in raw.
# One pass over the octets; strings and nesting are skipped properly. On MicroPython the
# pass runs as native code (viper, compiled from source for the load as crc16's loop is
# at import): in bytecode it was half of the rover's dictionary load on a Pico (0.3 s of
# 0.57 s for 23 KB).
def _members_py(raw):
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


_MEMBERS_MAX = const(32)  # top-level members the native pass has room for

# The same pass; each member as four int32s in `spans`: the key's quotes, the value's
# start and end. The member count, or -1 when there are more than _MEMBERS_MAX (or a
# member without a key): the caller then takes the Python pass.
_VIPER = """
@micropython.viper
def _scan_viper(raw, n: int, spans, cap: int) -> int:
    p = ptr8(raw)
    o = ptr32(spans)
    depth = 0
    in_str = 0
    esc = 0
    ks = -1
    ke = -1
    vs = -1
    end = -1
    k = 0
    i = 0
    while i < n:
        c = p[i]
        if in_str:
            if esc:
                esc = 0
            elif c == 0x5C:
                esc = 1
            elif c == 0x22:
                in_str = 0
                if depth == 1 and ke == -1:
                    ke = i
        elif c == 0x22:
            in_str = 1
            if depth == 1 and ke == -1:
                ks = i
        elif c == 0x3A and depth == 1:
            vs = i + 1
        elif c == 0x7B or c == 0x5B:
            depth += 1
        elif c == 0x7D or c == 0x5D:
            depth -= 1
            if depth == 0 and ke != -1:
                end = i
        elif c == 0x2C and depth == 1:
            if ke == -1:
                return -1
            end = i
        if end != -1:
            if k >= cap:
                return -1
            o[4 * k] = ks
            o[4 * k + 1] = ke
            o[4 * k + 2] = vs
            o[4 * k + 3] = end
            k += 1
            ke = -1
            end = -1
        i += 1
    return k
"""


def native_scan():
    # The viper pass compiled, or None (CPython, or a port without the native emitter).
    # Compiled for a load and dropped after it: the native code would otherwise stay on a
    # Pico's heap for the rover's whole run.
    if not MICROPYTHON:
        return None
    try:
        import micropython

        g = {"micropython": micropython}
        exec(_VIPER, g)
        return g["_scan_viper"]
    except Exception:  # no native emitter on this build: the Python pass
        return None


def _members(raw, scan=None):
    if scan is not None:
        from array import array

        spans = array("i", bytes(16 * _MEMBERS_MAX))
        k = scan(raw, len(raw), spans, _MEMBERS_MAX)
        if k >= 0:
            out = []
            for j in range(0, 4 * k, 4):
                key = bytes(raw[spans[j] + 1 : spans[j + 1]]).decode()
                out.append((key, spans[j + 2], spans[j + 3]))
            return out
    return _members_py(raw)


# Each section is parsed and reduced inside its own function, so no stale reference
# to a parsed tree survives in the caller's frame and gc.collect() frees it (on
# MicroPython only: CPython frees by reference counting, and a full collection per
# section would cost more than the whole load).
def _json(raw, spans, name):
    if MICROPYTHON:
        import gc

        gc.collect()
    a, b = spans[name]
    # MicroPython parses a memoryview in place; CPython's json wants bytes.
    return json.loads(memoryview(raw)[a:b] if MICROPYTHON else raw[a:b])


def _enums(raw, spans):
    enums = {}
    for name, values in _json(raw, spans, "enums").items():
        enums[name] = sorted(int(k) for k in values)
    return enums


def _name(blob, o):
    n = blob[o]
    return str(blob[o + 1 : o + 1 + n], "utf-8"), o + 1 + n


def _put_name(blob, name):
    b = name.encode()
    blob.append(len(b))
    blob.extend(b)


# Command record at _cmd[key]: name (u8 length + octets), tail u8, argument count n,
# the struct format's length u8 and its codes (one per argument, "12s" for bytes(12)),
# then per argument a flags octet (1: range follows as ">dd",
# 2: enum follows as u8 count + ">q" values).
def _commands(raw, spans, enums):
    index = {}
    blob = bytearray()
    for c in _json(raw, spans, "commands"):
        index[(c["service"] << 8) | c["subservice"]] = len(blob)
        _put_name(blob, c["name"])
        args = c["args"]
        fixed = [a for a in args if a["type"] != "tc"]
        blob.append(1 if len(fixed) < len(args) else 0)
        blob.append(len(fixed))
        codes = _fmt(fixed)[1:].encode()
        blob.append(len(codes))
        blob.extend(codes)
        for a in fixed:
            r = a.get("range")
            if a["type"] == "f32":
                # An f32 without a range must still be finite.
                r = (_f32(r[0]), _f32(r[1])) if r is not None else _F32_FINITE
            e = a.get("enum")
            blob.append((1 if r is not None else 0) | (2 if e else 0))
            if r is not None:
                blob.extend(struct.pack(">dd", r[0], r[1]))
            if e:
                v = enums[e]
                blob.append(len(v))
                blob.extend(struct.pack(">%dq" % len(v), *v))
    return index, bytes(blob)


# Records: sid u16, format length u8, format (after ">H"), names joined by ",".
def _housekeeping(raw, spans):
    hk = {}
    for h in _json(raw, spans, "housekeeping"):
        p = h["parameters"]
        hk[h["sid"]] = (">H" + _fmt(p)[1:], ",".join(x["name"] for x in p).encode())
    return hk


# Records: id u16, subservice u8, name, format (u8 length + octets, after ">H").
def _events(raw, spans):
    blob = bytearray()
    for e in _json(raw, spans, "events"):
        blob.extend(struct.pack(">HB", e["id"], _SEVERITY[e["severity"]]))
        _put_name(blob, e["name"])
        _put_name(blob, _fmt(e["args"])[1:])
    return bytes(blob)


# Records: id u16, lo and hi as ">f" (the ranges are f32), default as ">d" with a
# flag octet (1: an integer), name.
def _parameters(raw, spans):
    blob = bytearray()
    for p in _json(raw, spans, "parameters"):
        r = p["range"]
        d = p["default"]
        blob.extend(struct.pack(">HffdB", p["id"], r[0], r[1], d, 1 if isinstance(d, int) else 0))
        _put_name(blob, p["name"])
    return bytes(blob)


def _failures(raw, spans):
    blob = bytearray()
    for code, f in _json(raw, spans, "failure_codes").items():
        blob.extend(struct.pack(">H", int(code)))
        _put_name(blob, f["name"])
    return bytes(blob)


def _mission(raw, spans):
    m = _json(raw, spans, "mission")
    mission = {}
    for k in m:
        if k not in ("name", "epoch", "time_code"):
            mission[k] = m[k]
    return mission


class Dictionary:
    def __init__(self, path="dictionary.json"):
        scan = native_scan()  # compiled before the file's octets take their block
        with open(path, "rb") as f:
            raw = f.read()
        self.hash = struct.unpack(">I", hashlib.sha256(raw).digest()[0:4])[0]
        # One section at a time: the whole parsed tree would be several times the
        # file's size on the heap.
        spans = {}
        for key, a, b in _members(memoryview(raw), scan):
            spans[key] = (a, b)
        scan = None
        self._cmd, self._cmds_b = _commands(raw, spans, _enums(raw, spans))
        self._last = None  # (key, entry): the last command decoded
        self._hk = _housekeeping(raw, spans)
        self._ev = _events(raw, spans)
        self._par = _parameters(raw, spans)
        self._fail = _failures(raw, spans)
        self.mission = _mission(raw, spans)
        self.version = _json(raw, spans, "version")
        raw = None
        spans = None
        if MICROPYTHON:
            import gc

            gc.collect()

    # The entry is decoded from the command table on each lookup (the last one is
    # kept: a command repeated costs no allocation).
    def command(self, service, subservice):
        key = (service << 8) | subservice
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        o = self._cmd.get(key)
        if o is None:
            return None
        b = self._cmds_b
        name, o = _name(b, o)
        tail = b[o] == 1
        n = b[o + 1]
        k = b[o + 2]
        fmt = ">" + str(b[o + 3 : o + 3 + k], "utf-8")
        o += 3 + k
        ranges = []
        evals = []
        for _ in range(n):
            flags = b[o]
            o += 1
            r = None
            if flags & 1:
                r = struct.unpack_from(">dd", b, o)
                o += 16
            e = None
            if flags & 2:
                k = b[o]
                e = struct.unpack_from(">%dq" % k, b, o + 1)
                o += 1 + 8 * k
            ranges.append(r)
            evals.append(e)
        entry = (name, fmt, struct.calcsize(fmt), tuple(ranges), tuple(evals), tail)
        self._last = (key, entry)
        return entry

    def commands(self):
        c = {}
        for key in self._cmd:
            c[key] = self.command(key >> 8, key & 0xFF)
        return c

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
        return tuple(self._hk[sid][1].decode().split(","))

    # Events: (id, subservice, format, name end offset) per record, in order.
    def _event_records(self):
        b = self._ev
        o = 0
        while o < len(b):
            eid, sub = struct.unpack_from(">HB", b, o)
            name, f = _name(b, o + 3)
            fmt, o = _name(b, f)
            yield name, (eid, sub, ">H" + fmt)

    def event(self, name):
        for n, e in self._event_records():
            if n == name:
                return e
        raise KeyError(name)

    def events(self):
        return dict(self._event_records())

    # Linear search: only event dumps need it.
    def event_format(self, event_id):
        for _, e in self._event_records():
            if e[0] == event_id:
                return e[2]
        raise KeyError(event_id)

    @property
    def params(self):
        # {param id: (name, lo, hi, default)}, decoded on access
        b = self._par
        out = {}
        o = 0
        while o < len(b):
            pid, lo, hi, d, is_int = struct.unpack_from(">HffdB", b, o)
            name, o = _name(b, o + 19)
            out[pid] = (name, lo, hi, int(d) if is_int else d)
        return out

    @property
    def failure(self):
        # {name: code}, decoded on access
        b = self._fail
        out = {}
        o = 0
        while o < len(b):
            code = struct.unpack_from(">H", b, o)[0]
            name, o = _name(b, o + 2)
            out[name] = code
        return out
