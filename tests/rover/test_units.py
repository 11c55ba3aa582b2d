"""Unit tests: modes (hypothesis state machine), atomic parameters under power cuts,
HK coverage of the dictionary, a handler for every command, events ring, plant determinism."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from firmware_py import modes
from firmware_py.events import Events
from firmware_py.hal.plant import Plant
from firmware_py.params import OsFs, Params
from tests.rover.ground import DICT, RoverRig, make_root

ALLOWED = {
    modes.BOOT: {modes.SAFE, modes.STANDBY},
    modes.SAFE: {modes.STANDBY, modes.HIBERNATE},
    modes.STANDBY: {modes.DRIVE, modes.SAFE, modes.HIBERNATE},
    modes.DRIVE: {modes.STANDBY, modes.SAFE, modes.HIBERNATE},
    modes.HIBERNATE: {modes.SAFE},
}


class ModeMachine(RuleBasedStateMachine):
    """Any request sequence: only allowed transitions happen, each reported exactly once."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[int, int, int]] = []
        self.m = modes.Modes(lambda f, t, r: self.log.append((f, t, r)))
        self.model = modes.BOOT

    @rule(to=st.integers(-1, 6), reason=st.integers(0, 8))
    def request(self, to: int, reason: int) -> None:
        before = len(self.log)
        ok = self.m.request(to, reason)
        if to == self.model:
            assert ok and len(self.log) == before
        elif to in ALLOWED.get(self.model, set()):
            assert ok and self.log[-1] == (self.model, to, reason)
            self.model = to
        else:
            assert not ok and len(self.log) == before

    @invariant()
    def agrees(self) -> None:
        assert self.m.mode == self.model
        assert self.m.transitions == len(self.log)
        for f, t, _ in self.log:
            assert t in ALLOWED[f]


TestModeMachine = ModeMachine.TestCase

TABLE = tuple((p["id"], p["range"][0], p["range"][1], p["default"]) for p in DICT["parameters"])


class PowerCut(Exception):
    pass


class CuttingFs(OsFs):
    """A filesystem whose power fails after `budget` operations; a write in progress is cut short."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def _tick(self) -> None:
        if self.budget <= 0:
            raise PowerCut()
        self.budget -= 1

    def open(self, path: str, mode: str) -> Any:
        self._tick()
        f = open(path, mode)
        if "w" not in mode:
            return f
        fs = self

        class Cut:
            def __enter__(self) -> Cut:
                return self

            def __exit__(self, *a: Any) -> None:
                f.close()

            def write(self, s: str) -> None:
                # the write lands in pieces; the power may fail between any two
                for i in range(0, len(s), 7):
                    try:
                        fs._tick()
                    except PowerCut:
                        f.close()
                        raise
                    f.write(s[i : i + 7])

        return Cut()

    def rename(self, a: str, b: str) -> None:
        self._tick()
        super().rename(a, b)

    def remove(self, path: str) -> None:
        self._tick()
        super().remove(path)


def test_power_cut_at_every_step_of_a_parameter_write_leaves_old_or_new(tmp_path: Path) -> None:
    steps = 0
    while True:
        root = tmp_path / f"cut{steps}"
        root.mkdir()
        old = Params(TABLE, str(root))
        old.set(1, 150.0)  # the old set: max speed 150
        p = Params(TABLE, str(root), CuttingFs(steps))
        p.v[2] = 500.0  # the new set: also accel 500
        p.v[1] = 100.0
        try:
            p.save()
            finished = True
        except PowerCut:
            finished = False
        after = Params(TABLE, str(root))
        assert after.load()
        got = (after.v[1], after.v[2])
        assert got in ((150.0, 100.0), (100.0, 500.0)), (steps, got)
        if finished:
            assert got == (100.0, 500.0)
            break
        steps += 1
    assert steps > 5  # the cut really hit every step of a multi-step write


def test_params_reject_out_of_range_and_unknown(tmp_path: Path) -> None:
    p = Params(TABLE, str(tmp_path))
    assert p.set(1, 201.0) == 3 and p.set(1, float("nan")) == 3 and p.set(99, 1.0) == 9
    assert p.v[1] == 200.0 and not (tmp_path / "params.json").exists()
    assert p.set(1, 199.0) == 0
    assert json.loads((tmp_path / "params.json").read_text())["values"]["1"] == 199.0


def test_every_hk_parameter_has_a_source_and_every_command_a_handler(tmp_path: Path) -> None:
    from firmware_py.app import Rover

    rig = RoverRig(make_root(tmp_path / "r"))
    r = Rover(rig.board, rig.hal, rig.root, rig.rover_link)
    assert r.telemetry.missing == []
    assert r.telemetry.size == 2 + sum(
        {"u8": 1, "i8": 1, "u16": 2, "i16": 2, "u32": 4, "i32": 4, "f32": 4}[p["type"]]
        for p in DICT["housekeeping"][0]["parameters"]
    )
    for c in DICT["commands"]:
        assert c["name"] in r.dispatcher._h, c["name"]


def test_events_ring_keeps_the_last_16_in_order() -> None:
    sent: list[bytes] = []
    ev = Events({1: (1, ">HB")}, lambda sub, mv, n: sent.append(bytes(mv[:n])))
    for i in range(20):
        ev.emit(1, i)
    sent.clear()
    assert ev.dump() == 16
    assert [b[2] for b in sent] == list(range(4, 20))


@given(st.integers(1, 2**31 - 1))
def test_plant_is_deterministic_for_a_seed(seed: int) -> None:
    def run() -> tuple[float, ...]:
        p = Plant(seed)
        p.enabled = True
        for i in range(6):
            p.duty[i] = 0.5 if i < 3 else 0.6
        for _ in range(50):
            p.step(0.02)
        return (p.x, p.y, p.heading, p.pitch_out, *p.enc_out)

    assert run() == run()


def test_plant_jam_draws_stall_current_and_stops_the_wheel() -> None:
    p = Plant(3)
    p.enabled = True
    for i in range(6):
        p.duty[i] = 0.6
    p.set_wheel_fault(1, 1)
    for _ in range(100):
        p.step(0.02)
    assert p.speed[1] == 0.0 and p.current[1] > 1.5
    assert p.current[0] < 1.0 and p.speed[0] > 0.04


@pytest.mark.parametrize("to", [modes.SAFE, modes.HIBERNATE])
def test_no_way_out_of_hibernate_but_safe(to: int) -> None:
    m = modes.Modes()
    m.request(modes.STANDBY, 0)
    m.request(modes.HIBERNATE, 0)
    assert m.request(modes.STANDBY, 0) is False and m.request(modes.DRIVE, 0) is False
    assert m.request(to, 0) is True


def test_free_heap_on_cpython_reports_the_board_budget_not_zero() -> None:
    import tracemalloc

    from firmware_py.hal.sim import SimHal
    from tests.rover.ground import load_board

    board = load_board("sim")
    budget = board["heap_budget_kb"] * 1024
    hal = SimHal(board)
    was = tracemalloc.is_tracing()
    if was:
        tracemalloc.stop()
    try:
        assert hal.mem_free() == budget  # nothing measured: the budget, never 0 (RED on the ground)
        tracemalloc.start()
        hold = [bytearray(20000)]  # noqa: F841 - traced while held
        free = hal.mem_free()
        assert 0 < free <= budget - 20000  # tracing: the budget less what is traced
        tracemalloc.stop()
        assert SimHal({"heap_budget_kb": 160}).mem_free() == 160 * 1024
    finally:
        if was and not tracemalloc.is_tracing():
            tracemalloc.start()
        elif not was and tracemalloc.is_tracing():
            tracemalloc.stop()


def test_free_heap_in_hk_is_the_budget_on_cpython(tmp_path: Path) -> None:
    rig = RoverRig(make_root(tmp_path / "r"))
    from tests.rover.ground import load_board, run_vt

    async def script(rig: RoverRig) -> None:
        await rig.wait_for(lambda: "free_heap" in rig.hk(), 5)

    run_vt(rig, script)
    assert rig.hk()["free_heap"] == load_board("sim")["heap_budget_kb"] * 1024 == 320 * 1024


def test_link_polls_fast_while_the_uplink_is_busy_and_slowly_when_quiet(tmp_path: Path) -> None:
    from firmware_py.app import Rover

    rig = RoverRig(make_root(tmp_path / "r"))
    r = Rover(rig.board, rig.hal, rig.root, rig.rover_link)
    lk = r.link
    lk.poll(0)
    lk.poll(1)
    assert lk.poll_ms(1) == 100  # nothing in, nothing queued
    rig.send("PING")
    lk.poll(500)  # octets arrived: busy for 2 s
    assert lk.poll_ms(500) == 20
    lk.poll(600)
    assert lk.poll_ms(2499) == 20 and lk.poll_ms(2500) == 100
    r.events.emit(19, 0)  # TM queued: flushed within 100 ms, so polled at 20 ms
    assert lk.framer.pending and lk.poll_ms(3000) == 20


def test_telemetry_task_sleeps_until_the_next_report_is_due(tmp_path: Path) -> None:
    from firmware_py.app import Rover

    rig = RoverRig(make_root(tmp_path / "r"))
    tm = Rover(rig.board, rig.hal, rig.root, rig.rover_link).telemetry
    assert tm.wait_ms(0) == 1  # never sent: at once
    tm.poll(1000)
    assert tm.sent == 1 and tm.wait_ms(1000) == 1000 and tm.wait_ms(1700) == 300
    assert tm.wait_ms(2500) == 1  # overdue
    tm.period_ms = 10000
    assert tm.wait_ms(1000) == 1000  # a long period: still wakes every second
    assert tm.wait_ms(1000, 60000) == 1000 and tm.wait_ms(60000, 60000) == 1000
    tm.due = True
    assert tm.wait_ms(1001) == 1


@given(st.lists(st.one_of(st.integers(-(2**40), 2**40), st.floats(-1e6, 1e6)), min_size=3, max_size=3))
def test_hk_report_packs_the_same_octets_whole_as_field_by_field(values: list[Any]) -> None:
    # CPython packs a report in one struct call, MicroPython field by field: the same octets,
    # each value clamped to its type's range
    from firmware_py.telemetry import Telemetry

    fmt, names = ">HBhf", ["a", "b", "c"]
    sources = {n: (lambda v=v: v) for n, v in zip(names, values, strict=True)}
    whole, each = bytearray(9), bytearray(9)
    t = Telemetry(fmt, names, sources, memoryview(whole), lambda *a: None, sid=7)
    assert t._whole is not None and t.build() == 9
    t.data, t._whole = memoryview(each), None
    assert t.build() == 9
    assert whole == each
    a, b = int(values[0]), int(values[1])
    assert whole[2] == min(max(a, 0), 0xFF) and int.from_bytes(whole[3:5], "big", signed=True) == min(max(b, -0x8000), 0x7FFF)
