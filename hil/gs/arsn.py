"""The ground's anti-replay sequence numbers (ARSNs), persisted so they never go backwards.

One small state file per key and SPI in the user's state directory (`$FARSIDE_STATE_DIR`,
else the platform's user state dir), never in the repository. The file holds the highest
ARSN any ground process has reserved with that key; a process takes a block of `BLOCK`
ARSNs at a time under an exclusive file lock, so two ground processes on one key (a `gs`
session and `farside flash`, say) never send the same IV, and a crash loses at most the
rest of a block. A new process starts `MARK_RESERVE` above what was reserved: above the
mark the rover persists, so its first frame passes even before the rover reports its state.

    ledger = ArsnLedger.for_sa(sa)
    sender = SecuritySender(sa, seq=ledger.next_free(), reserve=ledger.reserve)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from hil.errors import FarsideError
from protocols.sdls import MARK_RESERVE, MAX_SEQ, SaConfig

BLOCK = 1024


def state_dir() -> Path:
    """Where the ground keeps its persisted state: $FARSIDE_STATE_DIR, else the user state dir."""
    env = os.environ.get("FARSIDE_STATE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_state_dir("farside"))


def key_fingerprint(key: bytes) -> str:
    """A name for a key that does not reveal it (16 hex digits)."""
    return hashlib.sha256(b"farside arsn ledger\0" + key).hexdigest()[:16]


@dataclass
class ArsnLedger:
    """The persisted ARSN high-water mark of one key and SPI (see the module docstring)."""

    path: Path
    block: int = BLOCK

    @classmethod
    def for_sa(cls, sa: SaConfig, root: Path | None = None, block: int = BLOCK) -> ArsnLedger:
        folder = (root or state_dir()) / "arsn"
        return cls(folder / f"{key_fingerprint(sa.key)}-spi{sa.spi}.json", block)

    def _read(self) -> int:
        try:
            obj = json.loads(self.path.read_text())
            return int(obj["reserved"])
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FarsideError(f"ARSN state file {self.path} is unreadable ({exc}); refusing to reuse sequence numbers") from None

    def _lock(self) -> int:
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise FarsideError(f"cannot open the ARSN state in {self.path.parent}: {exc.strerror or exc}") from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def reserved(self) -> int:
        """The highest ARSN reserved so far (0 = none)."""
        return self._read()

    def next_free(self) -> int:
        """Where a new process starts: MARK_RESERVE above everything reserved so far, so it
        is above the rover's persisted mark (at most the highest ARSN it accepted + 255) even
        before the rover reports it."""
        reserved = self._read()
        return reserved + MARK_RESERVE if reserved else 1

    def reserve(self, seq: int) -> tuple[int, int]:
        """Reserve a block starting at `seq` or above what was reserved before, whichever is
        higher; returns (first, last) of the block (persisted before it is returned)."""
        fd = self._lock()
        try:
            first = max(seq, self._read() + 1)
            if first > MAX_SEQ:
                raise FarsideError(f"ARSN exhausted for this key ({self.path.name}): rekey (farside keys rotate)")
            last = min(MAX_SEQ, first + self.block - 1)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                json.dump({"reserved": last}, f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
            return first, last
        finally:
            os.close(fd)  # closing the descriptor releases the lock
