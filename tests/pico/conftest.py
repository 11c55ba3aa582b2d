"""Shared by the emulated-Pico tests: what they need, and the firmware source to flash."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.errors import FarsideError
from tests.conftest import need
from tests.flash.conftest import src  # noqa: F401  (the fixture: a copy of firmware_py to edit)


def need_emulator() -> None:
    """Skip when Node.js or the rp2 firmware is missing; under CI (CI=true) fail instead."""
    from hil.board.emulated import ensure_chip_program, find_node, find_rp2_firmware

    try:
        find_node()
        find_rp2_firmware()
        ensure_chip_program()
    except FarsideError as exc:
        need(False, f"the emulated Pico is not available: {exc}")


@pytest.fixture(autouse=True)
def pico_keys(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Pico takes no dev keys: the key setting names fresh keys made for these tests, as
    `farside keys new --board pico` makes them for a user."""
    from hil.gs.keys import new_store, write_key_file

    path = tmp_path_factory.getbasetemp() / "pico-keys" / "pico.json"
    if not path.is_file():
        write_key_file(path, new_store())
    monkeypatch.setenv("FARSIDE_KEYS", str(path))
    return path
