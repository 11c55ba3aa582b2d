# Parameters: typed values with ranges (dictionary "parameters"), persisted atomically.
#
# Storage: `params.json` in the root folder holds
# {"version": 1, "values": {"<id>": value, ...}}. save() writes `params.json.new` completely
# (flushed, and fsync'd where the port has os.fsync), then renames it over `params.json`
# (on a filesystem whose rename will not replace, as FAT, the old file is removed first
# and load() falls back to the `.new` file). A save first finishes a commit that a power
# cut interrupted between that remove and the rename (no `params.json`, a whole `.new`),
# so a second cut never overwrites the only good copy. So any sequence of power cuts
# leaves the old set or the new set, never a mixture: load() takes the first of
# params.json, params.json.new that parses and checks.
#
#   Params(table, root="", fs=None)   table: ((id, lo, hi, default), ...)
#   .v[id] -> value (float)           hot-path read, no lookup
#   .set(id, value) -> failure code   0 ok, 9 UNKNOWN_PARAMETER, 3 OUT_OF_RANGE
#   .load() / .save()
import json
import os

_FILE = "params.json"


class OsFs:
    # The file operations params need (a test may substitute one that fails).
    def open(self, path, mode):
        return open(path, mode)

    def rename(self, a, b):
        os.rename(a, b)

    def remove(self, path):
        os.remove(path)


_OS = OsFs()


def join(root, name):
    if not root:
        return name
    return root + name if root.endswith("/") else root + "/" + name


def _parses(fs, path):
    try:
        with fs.open(path, "r") as f:
            json.load(f)
        return True
    except (OSError, ValueError):
        return False


def _sync(f):
    # Flush Python's buffer, then the OS's where the port can (CPython: os.fsync;
    # MicroPython's littlefs and FAT commit on close).
    flush = getattr(f, "flush", None)
    if flush is not None:
        flush()
    fsync = getattr(os, "fsync", None)
    if fsync is not None and hasattr(f, "fileno"):
        fsync(f.fileno())


def _replace(fs, src, dst):
    try:
        fs.rename(src, dst)
    except OSError:
        # A rename that will not replace (FAT): remove, then rename. A cut in between
        # leaves only `src`, which read_json() falls back to and the next write commits.
        try:
            fs.remove(dst)
        except OSError:
            pass
        fs.rename(src, dst)


def write_atomic(path, text, fs=None):
    # Write `path` so that any sequence of power cuts leaves the old or the new
    # contents: the new text goes to path.new, which is then renamed over path.
    fs = fs or _OS
    tmp = path + ".new"
    if not _parses(fs, path) and _parses(fs, tmp):
        # The last write was cut between remove and rename: tmp is the only good
        # copy. Commit it before tmp is overwritten.
        _replace(fs, tmp, path)
    with fs.open(tmp, "w") as f:
        f.write(text)
        _sync(f)
    _replace(fs, tmp, path)


def read_json(path, fs=None):
    # The object in path, else in path.new (a cut between remove and rename), else None.
    fs = fs or _OS
    for p in (path, path + ".new"):
        try:
            with fs.open(p, "r") as f:
                return json.load(f)
        except (OSError, ValueError):
            pass
    return None


class Params:
    def __init__(self, table, root="", fs=None):
        self.table = table
        self.fs = fs or OsFs()
        self.path = join(root, _FILE)
        n = 0
        for t in table:
            if t[0] >= n:
                n = t[0] + 1
        self.v = [0.0] * n
        self._range = {}
        for t in table:
            self.v[t[0]] = float(t[3])
            self._range[t[0]] = (t[1], t[2])
        self.loaded_from = None
        self.version = 0  # bumped on every change: users cache derived integers

    def check(self, pid, value):
        r = self._range.get(pid)
        if r is None:
            return 9
        if not (r[0] <= value <= r[1]):  # also rejects NaN
            return 3
        return 0

    def set(self, pid, value):
        code = self.check(pid, value)
        if code:
            return code
        old = self.v[pid]
        self.v[pid] = float(value)
        try:
            self.save()
        except OSError:
            self.v[pid] = old
            return 7
        self.version += 1
        return 0

    def _parse(self, path):
        try:
            with self.fs.open(path, "r") as f:
                d = json.load(f)
        except (OSError, ValueError):
            return None
        if not isinstance(d, dict) or d.get("version") != 1:
            return None
        vals = d.get("values")
        if not isinstance(vals, dict):
            return None
        out = {}
        for k in vals:
            try:
                pid = int(k)
                val = float(vals[k])
            except (TypeError, ValueError):
                return None
            if self.check(pid, val):
                return None
            out[pid] = val
        return out

    def load(self):
        for path in (self.path, self.path + ".new"):
            vals = self._parse(path)
            if vals is not None:
                for t in self.table:
                    self.v[t[0]] = float(vals.get(t[0], t[3]))
                self.loaded_from = path
                self.version += 1
                return True
        return False

    def save(self):
        vals = {}
        for t in self.table:
            vals[str(t[0])] = self.v[t[0]]
        write_atomic(self.path, json.dumps({"version": 1, "values": vals}), self.fs)
