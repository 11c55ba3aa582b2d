"""Key files and the one key setting every tool honours.

Resolution, the same in `gs`, `mission`, `flash` and `keys`:

1. ``--keys PATH|BOARD``: a key file path, or the name of a board whose key file
   `farside keys new --board NAME` made;
2. else ``$FARSIDE_KEYS`` (read the same way);
3. else the development keys (`hil/gs/dev_keys.json`), which only the sim board accepts:
   `farside flash` refuses to fall back to them for any other board.

Per-board key files live in the user's config directory (`$FARSIDE_CONFIG_DIR`, else the
platform's user config dir) under ``keys/BOARD.json``, owner-only (file 0600, folder 0700).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from hil.errors import FarsideError
from protocols.errors import ProtocolError
from protocols.sdls import KEY_LENGTH, KeyStore, SaConfig, Suite

DEV_KEYS = Path(__file__).resolve().parent / "dev_keys.json"
SIM_BOARDS = ("sim", "sim_uart")  # boards/*.json with chip "sim": the dev keys are theirs


def config_dir() -> Path:
    """$FARSIDE_CONFIG_DIR, else the platform's user config dir for farside."""
    env = os.environ.get("FARSIDE_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("farside"))


def keys_dir() -> Path:
    return config_dir() / "keys"


def board_key_path(board: str) -> Path:
    if not board or not board.replace("_", "a").replace("-", "a").isalnum():
        raise FarsideError(f"board name {board!r}: expected letters, digits, _ and -")
    return keys_dir() / f"{board}.json"


@dataclass(frozen=True)
class KeySetting:
    """Where the keys came from: the file, and how it was chosen (for messages)."""

    path: Path
    source: str  # "--keys", "$FARSIDE_KEYS" or "dev keys"

    @property
    def is_dev(self) -> bool:
        return self.source == "dev keys"


def _named(text: str, source: str) -> Path:
    path = Path(text).expanduser()
    if path.is_file() or "/" in text or text.endswith(".json"):
        if not path.is_file():
            raise FarsideError(f"{source}: no key file at {path}")
        return path
    board = board_key_path(text)
    if not board.is_file():
        raise FarsideError(f"{source}: {text!r} is neither a key file nor a board with keys (farside keys new --board {text})")
    return board


def resolve_keys(keys: str | Path | None = None, *, board: str | None = None, allow_dev: bool = True) -> KeySetting:
    """The key file to use (see the module docstring). `allow_dev=False` (flashing a board
    that is not a sim board) refuses the development keys as a fallback."""
    if keys is not None and str(keys) != "":
        return KeySetting(_named(str(keys), "--keys"), "--keys")
    env = os.environ.get("FARSIDE_KEYS")
    if env:
        return KeySetting(_named(env, "$FARSIDE_KEYS"), "$FARSIDE_KEYS")
    if not allow_dev:
        raise FarsideError(
            f"board {board or '?'} needs its own keys: --keys PATH|BOARD or $FARSIDE_KEYS "
            f"(make them with farside keys new --board {board or 'NAME'}); the dev keys are for the sim board only"
        )
    return KeySetting(DEV_KEYS, "dev keys")


def load_store(path: Path) -> KeyStore:
    try:
        return KeyStore.load(path)
    except ProtocolError as exc:
        raise FarsideError(str(exc)) from None


def write_key_file(path: Path, store: KeyStore) -> None:
    """Write a key file atomically with owner-only permissions (folder 0700, file 0600)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(store.to_json(), f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def new_store(suite: Suite = Suite.AES_GCM, spi: int = 1) -> KeyStore:
    """Fresh random keys: one SA (key_id 1) and an OTAR master key."""
    return KeyStore(
        sas={spi: SaConfig(spi, suite, secrets.token_bytes(KEY_LENGTH), 1)},
        master=secrets.token_bytes(KEY_LENGTH),
    )


def new_board_keys(board: str, *, force: bool = False, suite: Suite = Suite.AES_GCM) -> Path:
    """Make BOARD's key file in the user's config dir; refuses to overwrite without `force`."""
    path = board_key_path(board)
    if path.exists() and not force:
        raise FarsideError(f"{path} exists: rotating keys is farside keys rotate (or --force to replace them)")
    write_key_file(path, new_store(suite))
    return path


def list_board_keys() -> list[tuple[str, Path, KeyStore | None, str]]:
    """(board, path, store or None, problem) for each key file in the user's config dir."""
    out: list[tuple[str, Path, KeyStore | None, str]] = []
    folder = keys_dir()
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            out.append((path.stem, path, KeyStore.load(path), ""))
        except ProtocolError as exc:
            out.append((path.stem, path, None, str(exc)))
    return out
