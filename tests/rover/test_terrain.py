"""The seeded terrain (firmware_py.hal.terrain): rock sizes drawn from the Golombek & Rapp
(1997) model match its cumulative fractional area over a large seeded area; the surface is
deterministic for a seed, continuous and no steeper than its parts allow; lookups touch only
a short local list."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_py.hal import terrain as T
from firmware_py.hal.plant import Plant
from firmware_py.hal.terrain import Terrain


def rocks_in(t: Terrain, cells: int) -> list[tuple[float, float, float, float]]:
    out: list[tuple[float, float, float, float]] = []
    for i in range(cells):
        for j in range(cells):
            t.cell_rocks(i, j, out)
    return out


def test_the_model_s_numbers_for_the_chang_e_4_site() -> None:
    assert T.q_of_k(T.ROCK_K_CE4) == pytest.approx(1.79 + 0.152 / 0.0021)
    assert T.fractional_area(T.ROCK_K_CE4, 0.0) == pytest.approx(0.0021)
    # Chang'e-4 is smooth: rocks of 10 cm and wider cover about a millionth of the ground
    assert T.fractional_area(T.ROCK_K_CE4, 0.1) == pytest.approx(1.26e-6, rel=0.01)


@pytest.mark.parametrize("k", [0.02, 0.05])
def test_rock_sizes_match_the_cumulative_fractional_area_over_a_large_seeded_area(k: float) -> None:
    t = Terrain(seed=11, k=k)
    cells = 60  # 240 m x 240 m
    area = (cells * T.ROCK_CELL_M) ** 2
    rocks = rocks_in(t, cells)
    assert len(rocks) == pytest.approx(T.rocks_per_m2(k) * area, rel=0.05)
    for d, tol in ((0.1, 0.06), (0.2, 0.08), (0.3, 0.12), (0.5, 0.25)):
        covered = sum(math.pi * w * w / 4 for _, _, _, w in rocks if w >= d) / area
        assert covered == pytest.approx(T.fractional_area(k, d), rel=tol), (k, d)
    for _x, _y, h, w in rocks:
        assert T.ROCK_DMIN_M <= w <= T.ROCK_DMAX_M and h == pytest.approx(w * T.ROCK_H_PER_D)


def test_the_chang_e_4_abundance_gives_the_model_s_sparse_count() -> None:
    t = Terrain(seed=5)
    cells = 250  # 1 km^2
    rocks = rocks_in(t, cells)
    expect = T.rocks_per_m2(T.ROCK_K_CE4) * (cells * T.ROCK_CELL_M) ** 2
    assert abs(len(rocks) - expect) < 4 * math.sqrt(expect), (len(rocks), expect)
    assert max(h for _, _, h, _ in rocks) < 0.2  # nothing the rover cannot climb, on average


def test_a_seed_always_gives_the_same_surface_and_another_seed_another() -> None:
    def sample(seed: int) -> list[float]:
        t = Terrain(seed=seed, k=0.05)
        out = []
        for k in range(40):
            x, y = k * 2.3 - 30.0, k * -1.7 + 12.0
            t.refresh(x, y)
            out.append(t.ground(x, y))
        return out + [len(rocks_in(t, 5))]

    assert sample(3) == sample(3)
    assert sample(3) != sample(4)
    flat = Terrain(seed=0)
    flat.refresh(5.0, 5.0)
    assert flat.ground(5.0, 5.0) == 0.0 and flat.nr == 0 and flat.nc == 0


def test_craters_have_the_chang_e_4_depth_to_diameter_ratio() -> None:
    t = Terrain(seed=2)
    seen = 0
    for k in range(30):
        t.refresh(k * 12.0, 0.0)
        for n in range(t.nc):
            assert t.cd[n] == pytest.approx(2 * t.cr[n] * T.CRATER_DD)
            assert T.CRATER_DMIN_M / 2 <= t.cr[n] <= T.CRATER_DMAX_M / 2
            seen += 1
    assert seen > 5


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 2**30 - 1), st.floats(-500, 500), st.floats(-500, 500), st.floats(0, 2 * math.pi))
def test_the_surface_is_continuous_and_no_steeper_than_its_parts(seed: int, x: float, y: float, a: float) -> None:
    t = Terrain(seed=seed)
    t.refresh(x, y)
    step = 0.02
    h0 = t.ground(x, y)
    h1 = t.ground(x + step * math.cos(a), y + step * math.sin(a))
    # undulation (<= 1.5 * 0.3 m / 5 m) plus a crater wall (4 * 0.061): under 20 deg
    limit = 1.5 * 2 * T.NOISE_AMP_M / T.NOISE_CELL_M + 4 * T.CRATER_DD
    assert abs(h1 - h0) / step <= limit + 1e-6
    assert math.degrees(math.atan(limit)) < 20.0


def test_the_local_lists_are_short_and_rebuilt_only_after_a_metre() -> None:
    t = Terrain(seed=8, k=0.05)  # a rocky site, to fill the lists
    assert t.refresh(0.0, 0.0)
    assert 0 < t.nr <= 64
    assert not t.refresh(0.5, 0.5)  # within a metre: kept
    assert t.refresh(1.0, 0.5)
    t.add_rock(0.3, 0.2, 0.1, 0.2)  # a placed rock: rebuilt at the next look
    assert t.refresh(1.0, 0.5)
    assert any(t.rx[n] == 0.3 and t.ry[n] == 0.2 for n in range(t.nr))


def test_the_plant_on_seeded_terrain_pitches_and_rolls_within_its_limits() -> None:
    p = Plant(3)
    p.set_terrain(21)
    p.enabled = True
    for i in range(6):
        p.duty[i] = 0.8
    pitches, rolls = [], []
    while p.travelled < 40.0:
        p.step(0.05)
        pitches.append(p.pitch_deg)
        rolls.append(p.roll_deg)
    assert max(abs(v) for v in pitches) < 20.0 and max(abs(v) for v in rolls) < 20.0
    assert max(pitches) - min(pitches) > 1.0  # the ground is not flat
