# The few things MicroPython and CPython spell differently, in one place.
#
# On MicroPython these are the real builtins. On CPython, time comes from the
# running asyncio loop when there is one, so the firmware follows a virtual
# clock (the loop's time() may jump to the next timer) exactly as it follows
# the real one.
import sys

MICROPYTHON = sys.implementation.name == "micropython"

if MICROPYTHON:
    from micropython import const  # noqa: F401
    from time import ticks_add, ticks_diff, ticks_ms, ticks_us  # noqa: F401

    def mem_free(budget=0):
        # the heap's real free octets (budget: for CPython's sake, unused here)
        import gc

        return gc.mem_free()

else:
    import asyncio as _asyncio
    import time as _time

    _TICKS_PERIOD = 1 << 30
    _TICKS_MAX = _TICKS_PERIOD - 1
    _TICKS_HALF = _TICKS_PERIOD // 2

    def const(x):
        return x

    # the running loop's clock, looked up without raising (this is called on
    # every task wake: asyncio._get_running_loop returns None outside a loop)
    _running_loop = _asyncio._get_running_loop
    _monotonic = _time.monotonic

    def _now_s():
        loop = _running_loop()
        return loop.time() if loop is not None else _monotonic()

    def ticks_ms():
        loop = _running_loop()
        return int((loop.time() if loop is not None else _monotonic()) * 1000) & _TICKS_MAX

    def ticks_us():
        loop = _running_loop()
        return int((loop.time() if loop is not None else _monotonic()) * 1000000) & _TICKS_MAX

    def ticks_add(ticks, delta):
        return (ticks + delta) & _TICKS_MAX

    def ticks_diff(a, b):
        return ((a - b + _TICKS_HALF) & _TICKS_MAX) - _TICKS_HALF

    # mem_free(budget) -> octets, what HK free_heap reports. A CPython rover has
    # no heap of its own to measure (its objects share the host process's memory,
    # which has no limit), so it reports the board's heap budget (`budget`,
    # octets: boards/<name>.json heap_budget_kb * 1024), less what tracemalloc
    # has traced when it is tracing (the whole process's Python objects: an upper
    # bound on the rover's share; 0 at worst). Not 0 when nothing is measured:
    # 0 would read as an exhausted heap on the ground. The true figure for the
    # firmware's heap comes from the unix port or the board (gc.mem_free).
    def mem_free(budget=0):
        import tracemalloc

        if tracemalloc.is_tracing():
            used = tracemalloc.get_traced_memory()[0]
            return budget - used if used < budget else 0
        return budget

    class cryptolib:  # noqa: N801 - MicroPython's module name
        # MicroPython's cryptolib, the part the rover uses: aes(key, 1) in ECB mode,
        # encrypt(in_buf, out_buf=None) one or more whole blocks, built on the
        # `cryptography` package's AES (imported on first use).
        class aes:  # noqa: N801
            def __init__(self, key, mode, iv=None):
                if mode != 1:
                    raise ValueError("only ECB (mode 1) is provided on CPython")
                from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

                self._enc = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()

            def encrypt(self, in_buf, out_buf=None):
                out = self._enc.update(bytes(in_buf))
                if out_buf is None:
                    return out
                out_buf[0 : len(out)] = out
                return out_buf
