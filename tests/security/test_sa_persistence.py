"""Persistent anti-replay and keys on the rover's flash (firmware_py/sdls.py with
firmware_py/sastore.py): the mark is written before a frame above it is acted on, one
write per 256 numbers; after any boot nothing at or below the mark passes, AD or BD; a
power cut while the mark file is written leaves the old or the new mark; the check order;
OTAR keys stored and reloaded; TM frames verified by `cryptography`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_py import otar, sdls_frame
from firmware_py.sastore import SaStore
from firmware_py.sdls import (
    AUTH_BAD_MAC,
    AUTH_NO_SECURITY_HEADER,
    AUTH_OK,
    AUTH_OUT_OF_WINDOW,
    AUTH_REPLAYED,
    AUTH_UNKNOWN_SPI,
    F_KEY_UNAVAILABLE,
    F_OTAR_BAD_MAC,
    MIN_GCM,
    RESERVE,
    SUITE_GCM,
    SUITE_GMAC,
    Security,
    load_key_file,
)
from tests.rover.cutfs import CuttingFs
from tests.security.mark_cuts import mark_cut_outcomes
from tests.security.sdls_ground import KEY, MASTER, NEW_KEY, key_file, open_tm, secure_tc, wrap_key


def boot(root: Path, master: bytes | None = None, fs: Any = None) -> Security:
    return Security({1: (SUITE_GCM, KEY, 1), 7: bytes(range(100, 132))}, 64, SaStore(str(root), fs), master)


def accept(sec: Security, seq: int, bypass: bool = False) -> int:
    """verify, then (as the link does) reserve and commit when it passes."""
    f = bytearray(secure_tc("aes-gcm", KEY, 1, seq, b"data", bypass=bypass))
    r = sec.verify(f, len(f))
    if r == AUTH_OK:
        assert sec.reserve(1, seq)
        sec.commit(1, seq)
    return r


def test_the_mark_is_reserved_in_blocks_before_the_frame_is_acted_on(tmp_path: Path) -> None:
    sec = boot(tmp_path)
    assert sec.mark(1) == 0
    assert accept(sec, 1) == AUTH_OK
    assert sec.mark(1) == RESERVE and sec.store.writes == 1
    for s in range(2, RESERVE + 1):
        assert accept(sec, s) == AUTH_OK
    assert sec.store.writes == 1  # 256 frames, one write
    assert accept(sec, RESERVE + 1) == AUTH_OK
    assert sec.mark(1) == 2 * RESERVE and sec.store.writes == 2
    on_flash = json.loads((tmp_path / "sdls_state.json").read_text())
    assert on_flash["sas"]["1"] == {"mark": 2 * RESERVE, "key_id": 1}


def test_after_a_boot_nothing_at_or_below_the_mark_passes(tmp_path: Path) -> None:
    sec = boot(tmp_path)
    for s in (1, 2, 5):
        assert accept(sec, s) == AUTH_OK
    again = boot(tmp_path)
    assert again.highest(1) == again.mark(1) == RESERVE
    for s in (RESERVE - 63, RESERVE - 1, RESERVE):  # never seen, but at or below the mark
        assert accept(again, s) == AUTH_REPLAYED
        assert accept(again, s, bypass=True) == AUTH_REPLAYED
    for s in (1, 3, 4, 6):
        assert accept(again, s) == AUTH_OUT_OF_WINDOW
        assert accept(again, s, bypass=True) == AUTH_OUT_OF_WINDOW
    assert accept(again, RESERVE + 1, bypass=True) == AUTH_OK


def test_bd_frames_need_a_number_above_the_highest(tmp_path: Path) -> None:
    sec = boot(tmp_path)
    assert accept(sec, 10) == AUTH_OK
    assert accept(sec, 8, bypass=True) == AUTH_REPLAYED  # never seen, inside the window: AD only
    assert accept(sec, 8) == AUTH_OK
    assert accept(sec, 11, bypass=True) == AUTH_OK


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(1, 700), st.booleans(), st.sampled_from(["frame", "frame", "discard", "boot"])),
                max_size=50))
def test_no_number_is_ever_accepted_twice_across_boots(tmp_path_factory: Any, ops: list[tuple[int, bool, str]]) -> None:
    """A model of the contract: after every boot, nothing at or below the highest number
    accepted before it passes; within a boot, the IPsec window; BD only above H."""
    root = tmp_path_factory.mktemp("sa")
    sec = boot(root)
    accepted: set[int] = set()
    floor = 0  # the highest number accepted before the last boot
    h = boot_mark = 0  # H, and the mark found at the last boot (all at or below refused)
    for seq, bypass, op in ops:
        if op == "boot":
            sec = boot(root)
            floor = max(floor, max(accepted, default=0))
            h = boot_mark = sec.highest(1)
            assert h >= floor
            continue
        f = bytearray(secure_tc("aes-gcm", KEY, 1, seq, b"x", bypass=bypass))
        r = sec.verify(f, len(f))
        if r == AUTH_OK:
            assert seq not in accepted and seq > floor
            if bypass:
                assert seq > h
            if op == "frame":  # FARM took it
                assert sec.reserve(1, seq)
                sec.commit(1, seq)
                accepted.add(seq)
                h = max(h, seq)
                assert sec.mark(1) >= seq
        else:
            assert seq in accepted or seq <= boot_mark or h - seq >= 64 or (bypass and seq <= h)


def test_a_failed_mark_write_stops_the_frame(tmp_path: Path) -> None:
    sec = boot(tmp_path, fs=CuttingFs(10**6))
    assert accept(sec, 1) == AUTH_OK

    class Full(CuttingFs):
        def open(self, path: str, mode: str) -> Any:
            if "w" in mode:
                raise OSError(28)  # ENOSPC
            return super().open(path, mode)

    sec.store.fs = Full(10**6)
    f = bytearray(secure_tc("aes-gcm", KEY, 1, RESERVE + 1, b"x"))
    assert sec.verify(f, len(f)) == AUTH_OK
    assert not sec.reserve(1, RESERVE + 1)  # the link acts on nothing
    assert sec.mark(1) == RESERVE


def test_a_power_cut_while_the_mark_is_written_leaves_old_or_new(tmp_path: Path) -> None:
    for replace in (True, False):
        cases, failures = mark_cut_outcomes(str(tmp_path), replace)
        assert cases > 10 and failures == [], (replace, failures)


def test_a_power_cut_while_the_mark_is_written_under_micropython(run_mpy: Callable[..., Any], tmp_path: Path) -> None:
    out = run_mpy(
        "from tests.security.mark_cuts import mark_cut_outcomes\n"
        f"for rp in (True, False):\n    c, f = mark_cut_outcomes({str(tmp_path)!r}, rp)\n    print(c > 10, len(f))\n"
    ).stdout.split()
    assert out == ["True", "0", "True", "0"]


def test_check_order_and_short_frames() -> None:
    sec = Security({1: (SUITE_GCM, KEY, 1), 2: (SUITE_GMAC, KEY, 2)})
    f = bytearray(secure_tc("aes-gcm", KEY, 1, 5, b""))
    assert len(f) == MIN_GCM
    assert sec.verify(f[:28], 28) == AUTH_NO_SECURITY_HEADER
    short = bytearray(secure_tc("hmac-sha256", KEY, 1, 5, b"abcdefgh"))  # 37 - 8 octets
    assert sec.verify(short[:-1], len(short) - 1) == AUTH_NO_SECURITY_HEADER
    assert sec.verify(bytearray(secure_tc("aes-gcm", KEY, 3, 5, b"")), MIN_GCM) == AUTH_UNKNOWN_SPI
    # a bad tag wins over a stale number or a non-zero IV high half
    sec.commit(1, 500)
    bad = bytearray(secure_tc("aes-gcm", bytes(32), 1, 5, b"", iv_high=b"\x01" * 8))
    assert sec.verify(bad, len(bad)) == AUTH_BAD_MAC
    hi = bytearray(secure_tc("aes-gcm", KEY, 1, 501, b"", iv_high=b"\x00" * 7 + b"\x01"))
    assert sec.verify(hi, len(hi)) == AUTH_OUT_OF_WINDOW
    assert sec.verify(bytearray(secure_tc("aes-gcm", KEY, 1, 436, b"")), MIN_GCM) == AUTH_OUT_OF_WINDOW
    assert sec.verify(bytearray(secure_tc("aes-gcm", KEY, 1, 437, b"")), MIN_GCM) == AUTH_OK


def test_otar_stores_the_key_and_a_rekey_survives_a_boot(tmp_path: Path) -> None:
    sec = boot(tmp_path, MASTER)
    iv = bytes(range(12))
    wrapped, mac = wrap_key(MASTER, 2, NEW_KEY, iv)
    assert otar.load(sec, 2, iv, bytes(32), mac) == F_OTAR_BAD_MAC
    assert otar.load(sec, 2, iv, wrapped, mac, False) == 0 and sec.key(2) is None  # checked only
    assert otar.load(sec, 2, iv, wrapped, mac) == 0
    assert sec.key(2) == NEW_KEY
    assert accept(sec, 40) == AUTH_OK
    assert otar.rekey(sec, 1, 2) == 0 and otar.apply_pending(sec) == 1
    assert (sec.key_id(1), sec.mark(1), sec.highest(1)) == (2, 0, 0)
    assert otar.load(sec, 2, iv, wrapped, mac) == F_KEY_UNAVAILABLE  # the active key is not replaced
    assert otar.load(sec, 1, iv, *wrap_key(MASTER, 1, NEW_KEY, iv)) == F_KEY_UNAVAILABLE  # nor a retired one
    again = boot(tmp_path, MASTER)
    assert (again.key_id(1), again.mark(1)) == (2, 0)
    f = bytearray(secure_tc("aes-gcm", NEW_KEY, 1, 1, b"x"))
    assert again.verify(f, len(f)) == AUTH_OK
    old = bytearray(secure_tc("aes-gcm", KEY, 1, 41, b"x"))
    assert again.verify(old, len(old)) == AUTH_BAD_MAC
    assert otar.rekey_check(again, 1, 1) == F_KEY_UNAVAILABLE  # retired


def test_key_files_of_both_forms_load(tmp_path: Path) -> None:
    new = tmp_path / "new.json"
    new.write_text(json.dumps(key_file("gmac", tm_spi=1)))
    sas, master, tm_spi = load_key_file(str(new))
    assert sas[1] == (SUITE_GMAC, KEY, 1) and sas[7][0] == 1 and master == MASTER and tm_spi == 1
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"keys": {"1": KEY.hex()}}))
    assert load_key_file(str(old)) == ({1: KEY}, None, 0)


@given(st.sampled_from(["gmac", "aes-gcm"]), st.binary(min_size=0, max_size=120), st.integers(0, 7))
def test_tm_frames_open_with_cryptography(suite: str, data: bytes, vcid: int) -> None:
    from firmware_py.crc16 import crc16
    from firmware_py.sdls import TM_OVERHEAD

    code = SUITE_GCM if suite == "aes-gcm" else SUITE_GMAC
    sec = Security({1: (code, KEY, 1)}, tm_spi=1)
    inner_len = 6 + len(data) + 6
    f = bytearray(4 + inner_len)
    f[0:4] = b"\x1a\xcf\xfc\x1d"
    f[4:10] = bytes([0x0A, 0xB0 | (vcid << 1) | 1, 7, 9, 0x18, 0])
    f[10 : 10 + len(data)] = data
    f[10 + len(data) : 14 + len(data)] = b"\x01\x02\x03\x04"
    c = crc16(f, 4, len(f) - 2)
    f[-2:] = bytes([c >> 8, c & 0xFF])
    out = bytearray(len(f) + TM_OVERHEAD)
    for want in (1, 2):
        n = sdls_frame.tm_secure(sec, f, out)
        assert n == len(out)
        spi, seq, plain = open_tm(suite, KEY, bytes(out[4:n]))
        assert (spi, seq, plain) == (1, want, bytes(f[4:]))
