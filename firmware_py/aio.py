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

    def sleep_ms(ms):
        if ms > 0:
            fast = getattr(_running_loop(), "sleep_future", None)
            if fast is not None:
                return fast(ms * 0.001)
        return _sleep(ms * 0.001)
