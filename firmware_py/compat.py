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

    def mem_free():
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

    def _now_s():
        try:
            return _asyncio.get_running_loop().time()
        except RuntimeError:
            return _time.monotonic()

    def ticks_ms():
        return int(_now_s() * 1000) & _TICKS_MAX

    def ticks_us():
        return int(_now_s() * 1000000) & _TICKS_MAX

    def ticks_add(ticks, delta):
        return (ticks + delta) & _TICKS_MAX

    def ticks_diff(a, b):
        return ((a - b + _TICKS_HALF) & _TICKS_MAX) - _TICKS_HALF

    def mem_free():
        return 0
