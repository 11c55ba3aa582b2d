# Power cuts while the SDLS mark file is written (firmware_py/sastore.py), for every
# operation a write takes, on both kinds of filesystem (rename replaces / rename refuses
# an existing target, as FAT). Plain MicroPython-compatible Python: the same code runs
# under CPython and under the MicroPython unix port (tests/security/test_sa_persistence.py).
#
#   mark_cut_outcomes(root, replace) -> (cases run, failures)
#       For every k: the mark at A on flash, then a frame needing mark B cut after k
#       operations; the next boot must find A or B (never less, never a mixture), accept
#       nothing at or below the mark it found, and keep working.
from firmware_py.sastore import SaStore
from firmware_py.sdls import AUTH_OK, Security
from tests.rover.cutfs import CuttingFs, PowerCut

KEY = bytes(range(32))


def _clean(root):
    import os

    for name in ("sdls_state.json", "sdls_state.json.new", "sdls_keys.json"):
        try:
            os.remove(root + "/" + name)
        except OSError:
            pass


def _boot(root, fs=None):
    return Security({1: (3, KEY, 1)}, 64, SaStore(root, fs))


def _frame(sec, seq, bypass=0):
    buf = bytearray(64)
    n = sec.build_frame(buf, bypass, 0, 171, 1, 0, 1, seq, b"ping")
    return buf, n


def mark_cut_outcomes(root, replace):
    failures = []
    cases = 0
    k = 0
    while True:
        _clean(root)
        sec = _boot(root, CuttingFs(10**6, replace))
        assert sec.reserve(1, 10)  # mark A = 265 on flash
        sec.commit(1, 10)
        a = sec.mark(1)
        sec.store.fs = CuttingFs(k, replace)
        done = False
        try:
            done = sec.reserve(1, a + 5)  # needs mark B = a + 5 + 255
        except PowerCut:
            pass
        b = a + 5 + 255
        cases += 1
        after = _boot(root)
        m = after.mark(1)
        if m not in (a, b) or (done and m != b):
            failures.append((k, m))
        for seq in (10, a, m):
            for bd in (0, 1):
                buf, n = _frame(after, seq, bd)
                if after.verify(buf, n) == AUTH_OK:
                    failures.append(("accepted", k, seq, bd))
        buf, n = _frame(after, m + 1)
        if after.verify(buf, n) != AUTH_OK or not after.reserve(1, m + 1):
            failures.append(("next", k))
        if done:
            break
        k += 1
    return cases, failures
