"""Key handling on the ground: the persisted ARSN ledger, the one key setting, `farside keys`,
and flashing a real board without its own keys."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.cli import main
from hil.errors import FarsideError
from hil.gs.arsn import ArsnLedger
from hil.gs.keys import DEV_KEYS, board_key_path, resolve_keys
from protocols.sdls import MARK_RESERVE, MAX_SEQ, KeyStore, SaConfig, SecuritySender, Suite

SA = SaConfig(1, Suite.AES_GCM, bytes(range(32)))


def _sender(root: Path, block: int = 16) -> SecuritySender:
    ledger = ArsnLedger.for_sa(SA, root, block)
    return SecuritySender(SA, seq=ledger.next_free(), reserve=ledger.reserve)


@given(st.lists(st.integers(0, 70), min_size=1, max_size=8))
def test_ground_arsns_never_go_backwards_across_sessions(tmp_path_factory, frames_per_session: list[int]) -> None:
    root = tmp_path_factory.mktemp("state")
    used: list[int] = []
    for n in frames_per_session:  # each session a new process: a new sender on the same ledger
        s = _sender(root)
        used += [s.next_seq() for _ in range(n)]
    assert used == sorted(used) and len(set(used)) == len(used)
    # a new session starts MARK_RESERVE above anything reserved: above the rover's mark
    if used:
        assert _sender(root).next_seq() >= used[-1] + MARK_RESERVE


def _take(root: str, n: int, out: multiprocessing.Queue) -> None:
    s = _sender(Path(root), block=8)
    out.put([s.next_seq() for _ in range(n)])


def test_two_ground_processes_on_one_key_never_share_an_arsn(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    q: multiprocessing.Queue = ctx.Queue()
    procs = [ctx.Process(target=_take, args=(str(tmp_path), 50, q)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    flat = [x for g in got for x in g]
    assert len(set(flat)) == len(flat) == 150


def test_the_ledger_is_owner_only_and_outside_the_checkout(tmp_path: Path) -> None:
    s = _sender(tmp_path)
    s.next_seq()
    files = list((tmp_path / "arsn").glob("*.json"))
    assert len(files) == 1 and SA.key.hex() not in files[0].name
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    # the test session's ledgers are in a temp folder, never under the user's home
    assert not os.environ["FARSIDE_STATE_DIR"].startswith(str(Path.home()))


def test_a_damaged_ledger_is_refused_rather_than_restarted(tmp_path: Path) -> None:
    ledger = ArsnLedger.for_sa(SA, tmp_path)
    ledger.reserve(1)
    ledger.path.write_text("{")
    with pytest.raises(FarsideError, match="unreadable"):
        ledger.next_free()


def test_the_sender_refuses_past_2_32(tmp_path: Path) -> None:
    s = SecuritySender(SA, seq=MAX_SEQ)
    assert s.exhausting and s.next_seq() == MAX_SEQ
    with pytest.raises(Exception, match="exhausted"):
        s.next_seq()


def test_one_key_setting_flag_then_env_then_dev_keys_for_sim_only(tmp_path: Path, monkeypatch) -> None:
    assert resolve_keys(None).path == DEV_KEYS
    with pytest.raises(FarsideError, match="board pico needs its own keys"):
        resolve_keys(None, board="pico", allow_dev=False)
    own = tmp_path / "mine.json"
    own.write_text(json.dumps(KeyStore(sas={1: SA}).to_json()))
    monkeypatch.setenv("FARSIDE_KEYS", str(own))
    assert resolve_keys(None, board="pico", allow_dev=False).path == own
    assert resolve_keys(DEV_KEYS).path == DEV_KEYS  # the flag wins over the environment
    assert main(["keys", "new", "--board", "rover7"]) == 0
    monkeypatch.setenv("FARSIDE_KEYS", "rover7")  # a board name
    assert resolve_keys(None).path == board_key_path("rover7")
    with pytest.raises(FarsideError, match="neither a key file nor a board"):
        resolve_keys("nosuchboard")


def test_keys_new_and_list_make_owner_only_files_and_never_print_keys(capsys) -> None:
    assert main(["keys", "new", "--board", "pico9"]) == 0
    path = board_key_path("pico9")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    store = KeyStore.load(path)
    assert store.sa(1) is not None and store.sa(1).suite is Suite.AES_GCM and store.master is not None
    assert main(["keys", "new", "--board", "pico9"]) == 2  # no silent overwrite
    assert "exists" in capsys.readouterr().err
    assert main(["keys", "list"]) == 0
    out = capsys.readouterr().out
    assert "pico9: SPI 1 aes-gcm key 1" in out
    assert store.sa(1).key.hex() not in out and store.master.hex() not in out  # type: ignore[union-attr]
    other = KeyStore.load(board_key_path("pico9"))
    assert main(["keys", "new", "--board", "pico10"]) == 0
    assert KeyStore.load(board_key_path("pico10")).sa(1).key != other.sa(1).key  # type: ignore[union-attr]


def test_flashing_a_real_board_without_its_own_keys_is_refused_in_one_line(capsys) -> None:
    master, slave = os.openpty()  # a serial port that exists: only the keys are missing
    try:
        port = os.ttyname(slave)
        assert main(["flash", "--board", "pico", "--port", port]) == 2
        err = capsys.readouterr().err
        assert err.startswith("farside: error: board pico needs its own keys") and err.count("\n") == 1
        assert "Traceback" not in err
        assert not _readable(master)  # refused before a single octet went to the board
    finally:
        os.close(master)
        os.close(slave)


def _readable(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0)[0])


def test_flash_writes_the_chosen_key_file_to_the_board(tmp_path: Path) -> None:
    from hil.flash.image import load_keys

    assert main(["keys", "new", "--board", "pico11"]) == 0
    assert load_keys("pico11", "pico") == board_key_path("pico11").read_bytes()
    assert load_keys(None, "sim") == DEV_KEYS.read_bytes()


def test_the_committed_dev_keys_are_the_new_form_with_the_legacy_sa_on_spi_7() -> None:
    store = KeyStore.load(DEV_KEYS)
    assert store.sa(1).suite is Suite.AES_GCM  # type: ignore[union-attr]
    assert store.sa(7).suite is Suite.HMAC_SHA256  # type: ignore[union-attr]
    legacy = KeyStore.from_json({"keys": {"1": "00" * 32}})
    assert legacy.sa(1).suite is Suite.HMAC_SHA256  # type: ignore[union-attr]


def test_gs_and_mission_honour_farside_keys(tmp_path: Path, monkeypatch) -> None:
    from hil.gs.link import GroundLink
    from hil.gs.mission import Mission
    from hil.mission.loop import make_rover_root

    mine = tmp_path / "board.json"
    store = KeyStore(sas={1: SaConfig(1, Suite.GMAC, bytes(range(32, 64)), 4)})
    mine.write_text(json.dumps(store.to_json()))
    monkeypatch.setenv("FARSIDE_KEYS", str(mine))
    ground = GroundLink(Mission.load())  # what `farside gs` and `farside mission` build
    assert ground.key_setting.path == mine and ground.security.sa == store.sa(1)
    root = make_rover_root(tmp_path / "rover", Mission.load())  # the mission's sim rover
    assert KeyStore.load(root / "keys.json").sa(1) == store.sa(1)
    explicit = GroundLink(Mission.load(), keys=DEV_KEYS)  # --keys wins
    assert explicit.security.sa == KeyStore.load(DEV_KEYS).sa(1)
