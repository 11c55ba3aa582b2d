"""The rp2 HAL's integer arithmetic and its quadrature decoder, on CPython against an
independent reference (the HAL runs them on the chip: tests/pico/test_pins.py).

`firmware_py.hal.rp2` imports `machine`; here a small stand-in gives it pins whose levels the
test sets and `machine.mem32` reading them as SIO GPIO_IN does. CPython has no viper, so the
encoders count with the bytecode handler: the same loop as the native one.
"""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

GPIO_IN = 0xD0000004
PINS = [[11, 12], [13, 14], [15, 16], [17, 18], [19, 20], [21, 22]]  # boards/pico.json
FORWARD = (0, 2, 3, 1)  # A, B as (A << 1) | B, in the order a wheel turning forwards counts up


class _Chip:
    """The pin levels (GPIO_IN) and the handlers registered on them."""

    def __init__(self) -> None:
        self.levels = 0
        self.handlers: dict[int, Any] = {}

    def toggle(self, pin: int) -> None:
        self.levels ^= 1 << pin
        self.handlers[pin](None)  # the hard IRQ, run at once


def _machine(chip: _Chip) -> types.ModuleType:
    class Pin:
        IN, OUT, PULL_UP, IRQ_RISING, IRQ_FALLING = 0, 1, 2, 4, 8

        def __init__(self, pin: int, *_: Any, **__: Any) -> None:
            self.pin = pin

        def irq(self, handler: Any, trigger: int, hard: bool = False) -> None:
            assert trigger == Pin.IRQ_RISING | Pin.IRQ_FALLING and hard
            chip.handlers[self.pin] = handler

    class Mem32:
        def __getitem__(self, addr: int) -> int:
            assert addr == GPIO_IN
            return chip.levels

    machine = types.ModuleType("machine")
    machine.Pin = Pin  # type: ignore[attr-defined]
    machine.mem32 = Mem32()  # type: ignore[attr-defined]
    machine.UART = machine.PWM = machine.WDT = machine.I2C = object  # type: ignore[attr-defined]
    return machine


@pytest.fixture(scope="module")
def rp2() -> Iterator[types.ModuleType]:
    """firmware_py.hal.rp2 imported against the stand-in `machine` (put back afterwards)."""
    saved = {k: sys.modules.get(k) for k in ("machine", "firmware_py.hal.rp2")}
    sys.modules["machine"] = _machine(_Chip())
    sys.modules.pop("firmware_py.hal.rp2", None)
    import firmware_py.hal.rp2 as mod

    yield mod
    for k, v in saved.items():
        if v is None:
            sys.modules.pop(k, None)
        else:
            sys.modules[k] = v


def _encoders(rp2: types.ModuleType, levels: int = 0) -> tuple[Any, _Chip]:
    chip = _Chip()
    chip.levels = levels
    rp2.machine = _machine(chip)
    rp2.Pin = rp2.machine.Pin
    return rp2._Encoders(PINS), chip


def _state(levels: int, wheel: int) -> int:
    a, b = PINS[wheel]
    return ((levels >> a) & 1) << 1 | ((levels >> b) & 1)


@given(
    start=st.integers(0, (1 << 23) - 1),
    toggles=st.lists(st.integers(0, 11), max_size=300),
)
def test_the_decoder_counts_every_edge_as_the_gray_code_says(
    rp2: types.ModuleType, start: int, toggles: list[int]
) -> None:
    """From any pin levels, any sequence of single edges: each wheel's count is its steps along
    the Gray code (+1 forwards, -1 back), and no other wheel's count moves."""
    enc, chip = _encoders(rp2, start)
    assert not enc.native  # CPython: the bytecode handler
    want = [0] * 6
    for k in toggles:
        wheel = k // 2
        before = _state(chip.levels, wheel)
        chip.toggle(PINS[wheel][k % 2])
        after = _state(chip.levels, wheel)
        i = FORWARD.index(before)
        want[wheel] += 1 if FORWARD[(i + 1) % 4] == after else -1
        assert [enc.e[w] for w in range(6)] == want


def test_edges_and_spurious_irqs_in_any_order(rp2: types.ModuleType) -> None:
    """A stateful run: edges on any pin, and IRQs that find nothing new (the one handler runs
    for every pin's edge, so a wheel's pins often read as they were): the counts follow the
    reference throughout."""

    class Encoders(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.enc, self.chip = _encoders(rp2)
            self.want = [0] * 6

        @rule(wheel=st.integers(0, 5), pin=st.integers(0, 1))
        def edge(self, wheel: int, pin: int) -> None:
            i = FORWARD.index(_state(self.chip.levels, wheel))
            self.chip.toggle(PINS[wheel][pin])
            self.want[wheel] += 1 if FORWARD[(i + 1) % 4] == _state(self.chip.levels, wheel) else -1

        @rule()
        def spurious(self) -> None:
            self.enc.handler(None)

        @invariant()
        def counts(self) -> None:
            assert [self.enc.e[w] for w in range(6)] == self.want

    Encoders.TestCase().runTest()


@given(st.integers(-23169, 23169), st.integers(-23169, 23169))
def test_hypot_is_the_integer_root(rp2: types.ModuleType, a: int, b: int) -> None:
    assert rp2._hypot(a, b) == math.isqrt(a * a + b * b)


@given(st.integers(-32768, 32767), st.integers(-46341, 46341))
def test_atan2_within_a_hundredth_of_a_degree(rp2: types.ModuleType, y: int, x: int) -> None:
    """As int(degrees(atan2(y, x)) * 100), within 1 (the table is within 0.001 deg; at a
    hundredth's edge the truncation may fall either way)."""
    want = int(math.degrees(math.atan2(y, x)) * 100)
    assert abs(rp2._atan2_cdeg(y, x) - want) <= 1


@pytest.mark.parametrize(
    "y, x, want",
    [(0, 1, 0), (1, 0, 9000), (0, -1, 18000), (-1, 0, -9000), (0, 0, 0), (1, 1, 4500), (-1, -1, -13500),
     (16384, 28378, 2999)],  # the last: 30 deg less a hair, as int(degrees(atan2) * 100) gives
)
def test_atan2_at_the_axes_and_diagonals(rp2: types.ModuleType, y: int, x: int, want: int) -> None:
    assert rp2._atan2_cdeg(y, x) == want
