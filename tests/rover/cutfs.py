# A filesystem whose power fails after a budget of operations, for the parameter store's
# power-cut tests. Plain MicroPython-compatible Python: the same code runs under CPython
# and under the MicroPython unix port (tests/rover/test_param_cuts.py).
#
#   CuttingFs(budget, replace=True)   every open, write piece, rename and remove costs 1;
#                                     when the budget is spent the power fails (PowerCut);
#                                     replace=False: rename refuses an existing target, as FAT
#   two_cut_outcomes(root, table, replace) -> list of failures (empty when the store held)
from firmware_py.params import OsFs, Params


class PowerCut(Exception):
    pass


class _CutWriter:
    def __init__(self, fs, f):
        self.fs = fs
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.f.close()

    def write(self, s):
        # The write lands in pieces; the power may fail between any two.
        for i in range(0, len(s), 7):
            try:
                self.fs.tick()
            except PowerCut:
                self.f.close()
                raise
            self.f.write(s[i : i + 7])


class CuttingFs(OsFs):
    def __init__(self, budget, replace=True):
        self.budget = budget
        self.replace = replace

    def tick(self):
        if self.budget <= 0:
            raise PowerCut()
        self.budget -= 1

    def open(self, path, mode):
        self.tick()
        f = open(path, mode)
        return _CutWriter(self, f) if "w" in mode else f

    def rename(self, a, b):
        self.tick()
        if not self.replace:
            try:
                open(b).close()
                raise OSError(17)  # EEXIST: this filesystem's rename will not replace
            except OSError as e:
                if e.args and e.args[0] == 17:
                    raise
        OsFs.rename(self, a, b)

    def remove(self, path):
        self.tick()
        OsFs.remove(self, path)


def _save(root, table, fs, speed, accel):
    p = Params(table, root, fs)
    p.v[1] = speed
    p.v[2] = accel
    try:
        p.save()
        return True
    except PowerCut:
        return False


def _loaded(root, table):
    p = Params(table, root)
    if not p.load():
        return None
    return (p.v[1], p.v[2])


def _clean(root):
    import os

    for name in ("params.json", "params.json.new"):
        try:
            os.remove(root + "/" + name)
        except OSError:
            pass


def two_cut_outcomes(root, table, replace):
    # Every pair (k1, k2): save set A cut after k1 operations, then save set B cut after
    # k2; after each, load() must give the set before that save or the set it wrote.
    # Returns (cases run, failures).
    old, a, b = (150.0, 400.0), (100.0, 500.0), (60.0, 300.0)
    failures = []
    cases = 0
    k1 = 0
    while True:
        _clean(root)
        assert _save(root, table, CuttingFs(10**6, replace), old[0], old[1])
        done1 = _save(root, table, CuttingFs(k1, replace), a[0], a[1])
        after1 = _loaded(root, table)
        if after1 not in (old, a) or (done1 and after1 != a):
            failures.append(("first", k1, after1))
        k2 = 0
        while True:
            # Rebuild the state after the first cut for each k2.
            _clean(root)
            _save(root, table, CuttingFs(10**6, replace), old[0], old[1])
            _save(root, table, CuttingFs(k1, replace), a[0], a[1])
            done2 = _save(root, table, CuttingFs(k2, replace), b[0], b[1])
            after2 = _loaded(root, table)
            cases += 1
            if after2 not in (after1, b) or (done2 and after2 != b):
                failures.append(("second", k1, k2, after1, after2))
            # The store takes the next write, whatever happened.
            _save(root, table, CuttingFs(10**6, replace), 1.0, 1.0)
            if _loaded(root, table) != (1.0, 1.0):
                failures.append(("next", k1, k2))
            if done2:
                break
            k2 += 1
        if done1:
            break
        k1 += 1
    return cases, failures
