# asyncio spellings shared by the firmware's tasks (MicroPython has sleep_ms).
#
# On CPython, a loop that offers sleep_future(delay_s) (hil.vclock's virtual-time loop)
# gives the task the timer's future to await at once: the same timer, set at the same
# time, woken in the same order as asyncio.sleep's, without its coroutine around it.
import asyncio

if hasattr(asyncio, "sleep_ms"):
    sleep_ms = asyncio.sleep_ms
else:
    _running_loop = asyncio._get_running_loop
    _sleep = asyncio.sleep
    _fast = [None, None]  # the last running loop and its sleep_future (or None)

    def sleep_ms(ms):
        if ms > 0:
            loop = _running_loop()
            if loop is not _fast[0]:
                _fast[0] = loop
                _fast[1] = getattr(loop, "sleep_future", None)
            fast = _fast[1]
            if fast is not None:
                return fast(ms * 0.001)
        return _sleep(ms * 0.001)
