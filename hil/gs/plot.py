"""PNG plots from decoded telemetry: parameters over time, and the traverse on a map.

The functions return the matplotlib Figure so a caller (or a test) can look at the
artists' data before `save_png` writes it. Figures are built with matplotlib's object
API and rendered by Agg at save time: no pyplot (its import and figure manager cost
about 2 s per process) and fixed margins instead of `tight_layout` (another second).

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
    for ax, n in zip(axes[:, 0], names, strict=True):
        y = hk.columns[n]
        if n in hk.enums:
            ax.step(t, y, where="post", label=n)
            used = sorted(set(np.unique(y).tolist()))
            ax.set_yticks(used, [hk.enums[n][i] for i in used])
        else:
            ax.plot(t, y.astype(np.float64), label=n)
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
    for i, (xs, ys) in enumerate(traverse_tracks(hk)):
        ax.plot(xs, ys, "-", lw=1.5, label=f"track {i + 1} ({len(xs)} samples)", gid=f"track-{i + 1}")
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
    fig.savefig(path, format="png", dpi=100, pil_kwargs={"compress_level": 1})
    return path


def events_args(events: Table, i: int) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(str(events.columns["args"][i]))
    return loaded
