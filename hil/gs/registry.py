"""Which ground-station service serves which link: one JSON file per link in a runtime folder.

The folder is platformdirs' user runtime dir + `farside/gs` (`FARSIDE_GS_RUN` overrides it).
For a link it holds, under a key made from the canonical URL (device paths resolved, so
`/dev/serial/by-id/...` and `/dev/ttyACM0` are one link):
  KEY.json   {url, pid, http, token}, mode 0600 (the token grants commanding)
  KEY.lock   flock-held by the service for its whole life: a free lock means the service is gone
  KEY.state.json     FOP-1 V(S) and the TC sequence count, written atomically (resume after kill -9)
  KEY.commands.jsonl the command log (ids, request ids, stages), so a restart resolves what was in flight
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hil.errors import FarsideError
from hil.locks import lock_held, try_lock


def run_dir() -> Path:
    """The registry folder (created, mode 0700)."""
    env = os.environ.get("FARSIDE_GS_RUN")
    if env:
        d = Path(env)
    else:
        import platformdirs

        with warnings.catch_warnings():  # no XDG_RUNTIME_DIR: its /tmp fallback is fine
            warnings.simplefilter("ignore")
            d = Path(platformdirs.user_runtime_dir("farside")) / "gs"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def canonical_url(url: str) -> str:
    """One spelling per link: device paths resolved (symlinks, relative paths), URLs as given."""
    if "://" in url:
        return url.strip()
    return os.path.realpath(url)


def link_key(url: str) -> str:
    """A file-name-safe key for a canonical URL: readable part + short hash."""
    canon = canonical_url(url)
    readable = re.sub(r"[^A-Za-z0-9]+", "_", canon).strip("_")[-40:]
    return f"{readable}-{hashlib.sha256(canon.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class Entry:
    """A running service as the registry names it."""

    url: str
    pid: int
    http: str
    token: str

    def describe(self) -> str:
        return f"pid {self.pid} at {self.http}"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lookup(url: str) -> Entry | None:
    """The live service for a link, or None (a stale file, dead pid or free lock, is not one)."""
    d, key = run_dir(), link_key(url)
    path = d / f"{key}.json"
    try:
        data = json.loads(path.read_text())
        entry = Entry(str(data["url"]), int(data["pid"]), str(data["http"]), str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(entry.pid) or not lock_held(d / f"{key}.lock"):
        return None
    return entry


class Registration:
    """The lock on a link, held for a service's life (see `claim`); `publish` writes the entry."""

    def __init__(self, url: str) -> None:
        self.url = canonical_url(url)
        self.dir = run_dir()
        self.key = link_key(url)
        self.path = self.dir / f"{self.key}.json"
        self.state_path = self.dir / f"{self.key}.state.json"
        self.commands_path = self.dir / f"{self.key}.commands.jsonl"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = try_lock(self.dir / f"{self.key}.lock")
        if fd is None:
            other = lookup(self.url)
            where = other.describe() if other is not None else "another process (starting up)"
            raise FarsideError(f"link {self.url} is already served by {where}") from None
        self._fd = fd

    def publish(self, http: str, token: str) -> Entry:
        entry = Entry(self.url, os.getpid(), http, token)
        write_atomic(self.path, json.dumps(asdict(entry)), mode=0o600)
        return entry

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            data = json.loads(self.path.read_text())
            if int(data.get("pid", -1)) == os.getpid():
                self.path.unlink()
        except (OSError, ValueError):
            pass
        os.close(self._fd)  # lets go of the lock (hil.locks: the fd is its only holder)
        self._fd = None


def claim(url: str) -> Registration:
    """Take the link (a stale entry is taken over); FarsideError if a live service holds it."""
    reg = Registration(url)
    reg.acquire()
    return reg


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a file so a reader (or a restart after kill -9) sees the old or the new text, whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
