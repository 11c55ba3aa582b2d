"""farside's user cache: $XDG_CACHE_HOME/farside, else ~/.cache/farside."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache() -> Path:
    """The folder farside caches into (compiled .mpy files, MicroPython builds, rp2 firmware)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "farside"
