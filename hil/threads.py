"""Background threads that leave Ctrl-C to the main thread.

The kernel delivers a terminal's SIGINT to any thread that does not block it. Python runs
its handler in the main thread in any case, but a main thread blocked in a read (readline's
`input`, a console's wait) is only woken when the signal itself lands on it. Each thread
made here blocks SIGINT first, so a Ctrl-C always interrupts what the operator is waiting on.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any


def background(target: Callable[[], Any], name: str) -> threading.Thread:
    """A started daemon thread running `target` with SIGINT blocked."""

    def run() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        target()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
