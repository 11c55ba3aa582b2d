"""PNG plots from decoded telemetry: parameters over time, and the traverse on a map.

The functions return the matplotlib Figure so a caller (or a test) can look at the
artists' data before `save_png` writes it. Figures are built with matplotlib's object
API and rendered by Agg at save time: no pyplot (its import and figure manager cost
about 2 s per process) and fixed margins instead of `tight_layout` (another second).

Long series are cut to what the figure can show before matplotlib sees them: a line to the
lowest and highest sample of each pixel column (`envelope`), a step plot to its changes, a track
to the samples that move it to another pixel (`track_points`); the PNG looks the same, and a
million samples draw about as fast as a few thousand.

Traverse: one track per boot (odometry restarts at each boot), drawn from the HK
x_m/y_m samples; markers where WHEEL_FAULT and HAZARD_* events happened, placed at
the rover's position in the last HK report before the event.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from hil.errors import FarsideError
from hil.gs.export import Table

FAULT_EVENTS = ("WHEEL_FAULT",)
HAZARD_PREFIX = "HAZARD_"
DPI = 100


def envelope(t: np.ndarray, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """(t, y) cut to the first, lowest, highest and last sample of each of `columns` equal
    spans of t, in time order: what a line `columns` pixels wide shows of it. Series shorter
    than four samples a column come back as they are. `t` must not decrease."""
    n = len(t)
    if n <= 4 * columns or columns < 1 or not np.isfinite(y).all():
        return t, y
    span = float(t[-1] - t[0]) or 1.0
    col = np.minimum(((t - t[0]) * (columns / span)).astype(np.int64), columns - 1)
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])  # each occupied column's first sample
    ends = np.r_[starts[1:], n] - 1
    lo = np.minimum.reduceat(y, starts)
    hi = np.maximum.reduceat(y, starts)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    # the index of a lowest and of a highest sample in each column
    i_lo = np.flatnonzero(y == lo[seg])
    i_hi = np.flatnonzero(y == hi[seg])
    first_lo = i_lo[np.r_[True, seg[i_lo][1:] != seg[i_lo][:-1]]]
    first_hi = i_hi[np.r_[True, seg[i_hi][1:] != seg[i_hi][:-1]]]
    keep = np.unique(np.concatenate((starts, ends, first_lo, first_hi)))
    return t[keep], y[keep]


def changes(t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A step series (drawn `where="post"`) cut to its first sample, each change and its last
    sample: the same steps."""
    if len(y) < 3:
        return t, y
    keep = np.flatnonzero(np.r_[True, y[1:] != y[:-1]])
    if keep[-1] != len(y) - 1:
        keep = np.r_[keep, len(y) - 1]
    return t[keep], y[keep]


def track_points(x: np.ndarray, y: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """A track (x, y) cut to the samples that move it into another square of side `cell` (a
    pixel's size in data units), with its first and last: the same path at that resolution."""
    if len(x) < 3 or not cell > 0 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        return x, y
    gx = np.floor((x - x.min()) / cell).astype(np.int64)
    gy = np.floor((y - y.min()) / cell).astype(np.int64)
    moved = np.r_[True, (gx[1:] != gx[:-1]) | (gy[1:] != gy[:-1])]
    moved[-1] = True
    keep = np.flatnonzero(moved)
    return x[keep], y[keep]


def plot_parameters(hk: Table, names: list[str], title: str = "") -> Figure:
    """One panel per parameter against rover time (s since the first sample)."""
    if not names:
        raise FarsideError("plot: name at least one parameter (e.g. -p battery_pct -p x_m)")
    for n in names:
        if n not in hk.columns:
            raise FarsideError(f"plot: no telemetry named {n!r} in {hk.name}")
    if len(hk) == 0:
        raise FarsideError(f"plot: no {hk.name} packets in this archive")
    t = hk.columns["packet_time_s"]
    t = t - t[0]
    height = 2.2 * len(names) + 0.8
    fig = Figure(figsize=(10, height))
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)
    columns = int(10 * DPI * (0.98 - 0.12))  # the axes' width in pixels
    for ax, n in zip(axes[:, 0], names, strict=True):
        y = hk.columns[n]
        if n in hk.enums:
            ax.step(*(changes(t, y) if len(t) > 4 * columns else (t, y)), where="post", label=n)
            used = sorted(set(np.unique(y).tolist()))
            ax.set_yticks(used, [hk.enums[n][i] for i in used])
        else:
            ax.plot(*envelope(t, y.astype(np.float64), columns), label=n)
        unit = hk.units.get(n, "")
        ax.set_ylabel(f"{n}\n[{unit}]" if unit else n)
        ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("rover time since first sample [s]")
    fig.suptitle(title or f"{hk.name}: {', '.join(names)}")
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.5 / height, top=1 - 0.5 / height, hspace=0.25)
    return fig


def traverse_tracks(hk: Table) -> list[tuple[np.ndarray, np.ndarray]]:
    """(x, y) arrays, one per boot."""
    if len(hk) == 0:
        return []
    x, y = hk.columns["x_m"], hk.columns["y_m"]
    boots = hk.columns["boot_count"].astype(np.int64)
    cut = np.flatnonzero(np.diff(boots) != 0) + 1
    return [(xs, ys) for xs, ys in zip(np.split(x, cut), np.split(y, cut), strict=True)]


def event_positions(hk: Table, events: Table) -> dict[str, list[tuple[float, float]]]:
    """Where each fault/hazard event happened: the position in the last HK before it."""
    out: dict[str, list[tuple[float, float]]] = {}
    if len(events) == 0 or len(hk) == 0:
        return out
    ht = hk.columns["packet_time_s"]
    for name, et in zip(events.columns["event"].tolist(), events.columns["packet_time_s"].tolist(), strict=True):
        if name in FAULT_EVENTS or name.startswith(HAZARD_PREFIX):
            i = max(int(np.searchsorted(ht, et, side="right")) - 1, 0)
            out.setdefault(name, []).append((float(hk.columns["x_m"][i]), float(hk.columns["y_m"][i])))
    return out


def plot_traverse(hk: Table, events: Table, title: str = "traverse") -> Figure:
    if len(hk) == 0:
        raise FarsideError("plot: no housekeeping in this archive: no traverse to draw")
    fig = Figure(figsize=(8, 8))
    ax = fig.subplots()
    tracks = traverse_tracks(hk)
    if tracks:  # a pixel's size in metres: the larger extent over the axes' 8 in * 0.86
        x_all, y_all = np.concatenate([x for x, _ in tracks]), np.concatenate([y for _, y in tracks])
        extent = max(float(np.ptp(x_all)), float(np.ptp(y_all))) if len(x_all) else 0.0
        cell = extent / (8 * DPI * 0.86) / 2  # half a pixel: the cut track lies within it
    for i, (xs, ys) in enumerate(tracks):
        ax.plot(*track_points(xs, ys, cell), "-", lw=1.5, label=f"track {i + 1} ({len(xs)} samples)",
                gid=f"track-{i + 1}")
        ax.plot(xs[:1], ys[:1], "o", color="green", ms=5, gid=f"start-{i + 1}")
    markers = {"WHEEL_FAULT": ("X", "red")}
    for name, pts in event_positions(hk, events).items():
        m, c = markers.get(name, ("^", "orange"))
        arr = np.array(pts)
        ax.plot(arr[:, 0], arr[:, 1], m, color=c, ms=10, ls="none", label=f"{name} ({len(pts)})", gid=f"event-{name}")
    ax.set_xlabel("x (east) [m]")
    ax.set_ylabel("y (north) [m]")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title)
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.07, top=0.95)
    return fig


def save_png(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # zlib's fastest level: a third of the encoding time for PNGs about a quarter larger
    fig.savefig(path, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return path


def events_args(events: Table, i: int) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(str(events.columns["args"][i]))
    return loaded
