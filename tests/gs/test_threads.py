"""Background threads leave Ctrl-C to the main thread (hil/threads.py)."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import time

from hil.threads import background


def test_a_background_thread_blocks_sigint_and_the_main_thread_does_not() -> None:
    masks: queue.Queue[set[int]] = queue.Queue()
    background(lambda: masks.put(set(signal.pthread_sigmask(signal.SIG_BLOCK, []))), "probe").join(5)
    assert signal.SIGINT in masks.get(timeout=5)
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


CHILD = """
import os, sys, time
from hil.threads import background
for n in range(4):  # busy threads the kernel could otherwise choose for the signal
    background(lambda: [sum(range(1000)) for _ in iter(int, 1)], f"busy{n}")
r, w = os.pipe()
print("ready", flush=True)
try:
    os.read(r, 1)  # the main thread blocked in a read, as readline's input is
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_a_sigint_interrupts_the_main_threads_blocking_read_while_background_threads_run() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=10)
        assert out.strip() == "interrupted"
    finally:
        child.kill()
