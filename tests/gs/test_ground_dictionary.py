"""The ground's dictionary holds no rule of its own: the protocols dictionary checks every value."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hil.errors import FarsideError
from hil.gs.mission import GroundDictionary, Mission
from protocols.dictionary import TC_TYPE, ArgumentError

G = Mission.load()
ARGS = [(c.name, a) for c in G.pd.commands.values() for a in c.args if a.type not in (TC_TYPE, "bytes")]


def test_the_old_name_is_the_same_class() -> None:
    assert Mission is GroundDictionary and isinstance(G, GroundDictionary)


@given(st.sampled_from(ARGS), st.one_of(st.integers(-(2**33), 2**33), st.floats(-1e10, 1e10)))
def test_ground_accepts_exactly_what_the_dictionary_accepts(arg: tuple, value: float) -> None:
    cmd, a = arg
    # the ground rounds away a unit conversion's noise (1e-9) before the dictionary's check
    assume(value == round(value) or abs(value - round(value)) > 1e-6)
    text = repr(value)
    try:
        want: int | float | None = G.pd.coerce(cmd, a, float(value) if a.type == "f32" else value)
    except ArgumentError:
        want = None
    try:
        got: int | float | None = G.typed_value(cmd, a, text)
    except FarsideError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"{cmd}")
        got = None
    assert got == want


@pytest.mark.parametrize(
    ("cmd", "arg", "value", "problem"),
    [
        ("WHEEL_DISABLE", "wheel", 1.5, "whole"),
        ("WHEEL_DISABLE", "wheel", 7, "range"),
        ("WHEEL_DISABLE", "wheel", float("nan"), "finite"),
        ("WHEEL_DISABLE", "wheel", "one", "number"),
        ("MODE_SET", "mode", 0, "range"),
    ],
)
def test_coerce_says_which_check_failed(cmd: str, arg: str, value: object, problem: str) -> None:
    a = next(x for x in G.pd.command(cmd).args if x.name == arg)
    with pytest.raises(ArgumentError) as info:
        G.pd.coerce(cmd, a, value)
    assert info.value.problem == problem
    assert (info.value.lo, info.value.hi) == (a.range or (0, 255))


def test_enum_labels_resolve_once() -> None:
    assert G.pd.enum_value("mode", "standby") == G.enum_value("mode", "STANDBY") == 2
    assert G.pd.enum_value("mode", "FLYING") is None
    with pytest.raises(FarsideError, match="^mode: expected one of BOOT, SAFE"):
        G.enum_value("mode", "FLYING")


def test_the_views_are_the_typed_model_read_only() -> None:
    with pytest.raises(TypeError):
        G.commands_by_name["PING"] = G.commands_by_name["PING"]  # type: ignore[index]
    assert all(G.commands_by_name[n] is c for n, c in G.pd.commands.items())
    assert all(G.hk_packets[s] is h for s, h in G.pd.housekeeping.items())
    assert all(G.events_by_id[i] is e is G.events_by_name[e.name] for i, e in G.pd.events.items())
    assert all(G.parameters_by_name[q.name] is q for q in G.pd.parameters.values())
    assert {n: (p.type, p.unit) for n, p in G.hk_parameters.items()} == {
        p["name"]: (p["type"], p.get("unit", "")) for h in G.raw["housekeeping"] for p in h["parameters"]
    }
    assert not hasattr(G, "commands") and not hasattr(G, "hk_params")


def test_limits_come_from_the_typed_model() -> None:
    assert G.limit_state("pitch_deg", 0.0) == "ok"
    assert G.limit_state("pitch_deg", 20.0) in ("yellow", "red")
    assert G.limit_state("no_such_parameter", 1e9) == "ok"
