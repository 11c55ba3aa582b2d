"""Long series are cut to what a figure can show, and the cut keeps what it shows."""

from __future__ import annotations

import numpy as np

from hil.gs.export import Table
from hil.gs.plot import changes, envelope, plot_parameters, track_points


def test_envelope_keeps_each_pixel_columns_extremes_and_the_ends() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(100_000, dtype=np.float64)
    y = np.cumsum(rng.normal(size=len(t)))
    y[51_234] += 500.0  # a one-sample spike
    ct, cy = envelope(t, y, 800)
    assert len(ct) <= 4 * 800 and np.all(np.diff(ct) > 0)
    assert (ct[0], ct[-1]) == (t[0], t[-1]) and (cy[0], cy[-1]) == (y[0], y[-1])
    assert 51_234.0 in ct.tolist() and cy.max() == y.max() and cy.min() == y.min()
    col = np.minimum((t * (800 / t[-1])).astype(int), 799)
    kcol = np.minimum((ct * (800 / t[-1])).astype(int), 799)
    for c in (0, 137, 512, 799):  # every column's lowest and highest sample is kept
        assert cy[kcol == c].max() == y[col == c].max() and cy[kcol == c].min() == y[col == c].min()
    short_t, short_y = t[:3000], y[:3000]
    assert envelope(short_t, short_y, 800)[0] is short_t  # four samples a column or fewer: as it is


def test_changes_keep_a_step_series_steps() -> None:
    y = np.repeat(np.array([2, 3, 3, 1, 2], dtype=np.uint8), [5, 3, 4, 1, 6])
    t = np.arange(len(y), dtype=np.float64)
    ct, cy = changes(t, y)
    assert ct.tolist() == [0, 5, 12, 13, 18] and cy.tolist() == [2, 3, 1, 2, 2]
    # the value at every sample time, read back from the steps (where="post"), is the original's
    assert (cy[np.searchsorted(ct, t, side="right") - 1] == y).all()


def test_track_points_stay_within_the_cell_and_keep_both_ends() -> None:
    s = np.linspace(0.0, 20.0, 50_000)
    x, y = np.cos(s) * 10, np.sin(s) * 10
    cx, cy = track_points(x, y, 0.01)
    assert 100 < len(cx) < len(x) // 2
    assert (cx[0], cy[0], cx[-1], cy[-1]) == (x[0], y[0], x[-1], y[-1])
    # every dropped sample lies in the same cell as the kept sample before it
    keep = np.flatnonzero(np.isin(x, cx) & np.isin(y, cy))
    prev = keep[np.searchsorted(keep, np.arange(len(x)), side="right") - 1]
    assert np.floor((x - x.min()) / 0.01).astype(int).tolist() == np.floor((x[prev] - x.min()) / 0.01).astype(int).tolist()


def test_a_million_sample_parameter_plot_draws_the_cut_series() -> None:
    n = 1_000_000
    t = np.arange(n, dtype=np.float64)
    hk = Table("hk_rover", {"packet_time_s": t, "battery_pct": (t % 1000).astype(np.float64),
                            "mode": (np.arange(n) // 250_000).astype(np.uint8)},
               enums={"mode": [f"M{i}" for i in range(256)]})
    fig = plot_parameters(hk, ["battery_pct", "mode"])
    line, step = (ax.get_lines()[0] for ax in fig.axes)
    ly = np.asarray(line.get_ydata())
    assert len(ly) <= 4 * 1000 and ly.max() == 999.0
    assert np.asarray(step.get_ydata()).tolist() == [0, 1, 2, 3, 3]
