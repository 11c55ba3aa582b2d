# asyncio spellings shared by the firmware's tasks (MicroPython has sleep_ms).
import asyncio

if hasattr(asyncio, "sleep_ms"):
    sleep_ms = asyncio.sleep_ms
else:

    def sleep_ms(ms):
        return asyncio.sleep(ms * 0.001)
