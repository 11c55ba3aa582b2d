"""`farside gs watch`: a live view of housekeeping, events, link and pose.

`render(snapshot)` is a pure function of the ground state's snapshot, so tests
render to a string and check what an operator would see; `watch_loop` drives it
with rich.Live at a fixed refresh rate, fitted to the terminal: housekeeping takes
as many column pairs as the width allows and the events pane the rows left over
(never fewer than MIN_EVENT_ROWS), so 120x40 shows everything.

Quantities are shown in the units the dictionary calibrates to (`display_units`: the
housekeeping parameters with a calibration declare metres, degrees, m/h, A, V...), so a
raw `obstacle_mm` or an event's `travelled_mm` and `heading_cdeg` read in metres and
degrees like `x_m` and `heading_deg`. A quantity's own unit is the one the dictionary
declares, else the one its name ends with (`_mm`, `_cdeg`: the dictionary's naming rule).
"""

from __future__ import annotations

import io
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hil.gs.mission import Mission
from hil.gs.state import EventRecord, GroundState
from hil.gs.units import UNITS
from protocols.dictionary import Arg

COLOURS = {"red": "bold white on red", "yellow": "black on yellow", "ok": ""}
SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": ""}
MIN_EVENT_ROWS = 6  # the events pane keeps at least this many rows, whatever the height
HK_PAIR_WIDTH = 38  # columns one parameter/value pair needs


# --- units as the dictionary declares them ---------------------------------------------


_DISPLAY_UNITS: dict[int, tuple[Mission, dict[str, str]]] = {}


def display_units(mission: Mission) -> dict[str, str]:
    """Dimension -> the unit shown for it: the unit the dictionary's calibrated housekeeping
    parameters are in (x_m and odometer_m: length in m; heading_deg: angle in deg)."""
    cached = _DISPLAY_UNITS.get(id(mission))
    if cached is not None and cached[0] is mission:
        return cached[1]
    seen: dict[str, Counter[str]] = {}
    for p in mission.hk_parameters.values():
        if p.calibration and p.unit in UNITS:
            seen.setdefault(UNITS[p.unit][0], Counter())[p.unit] += 1
    found = {dim: units.most_common(1)[0][0] for dim, units in seen.items()}
    _DISPLAY_UNITS[id(mission)] = (mission, found)
    return found


def own_unit(a: Arg) -> str:
    """The unit of a field: declared, else the unit its name ends with (`travelled_mm`)."""
    if a.unit:
        return a.unit
    suffix = a.name.rsplit("_", 1)[-1] if "_" in a.name else ""
    return suffix if suffix in UNITS and UNITS[suffix][0] in ("length", "angle") else ""


def shown_quantity(mission: Mission, value: float, unit: str) -> tuple[float, str]:
    """(value, unit) converted to the display unit of its dimension, if the dictionary has one."""
    dim = UNITS.get(unit)
    target = display_units(mission).get(dim[0]) if dim else None
    if dim is None or target is None or target == unit:
        return value, unit
    return value * dim[1] / UNITS[target][1], target


def _number(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def event_message(mission: Mission, e: EventRecord) -> str:
    """An event's message with its quantities in display units (`after 1.2 m`, not `1200 mm`)."""
    ev = mission.events_by_name.get(e.name)
    if ev is None:
        return e.message
    text = ev.message
    for a in ev.args:
        raw = e.args.get(a.name)
        if raw is None:
            return e.message
        unit = own_unit(a)
        if a.enum is not None:
            shown = mission.enum_label(a.enum, int(raw))
        elif unit and isinstance(raw, int | float):
            value, shown_unit = shown_quantity(mission, float(raw), unit)
            if shown_unit == unit:
                shown = f"{raw:.6g}" if isinstance(raw, float) else str(raw)
            else:  # `{x_mm} mm` and a bare `{x_mm}` both become `1.2 m`
                pattern = r"\{" + a.name + r"\}(\s*" + re.escape(unit) + r"(?![\w/]))?"
                text = re.sub(pattern, f"{_number(value)} {shown_unit}", text)
                continue
        else:
            shown = f"{raw:.6g}" if isinstance(raw, float) else str(raw)
        text = text.replace("{" + a.name + "}", shown)
    return text


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1e5 else f"{v:.4g}"
    return str(v)


def _age(t: float | None, now: float) -> str:
    if t is None:
        return "never"
    dt = now - t
    return f"{dt:.1f} s ago" if dt < 120 else f"{dt / 60:.1f} min ago"


def hk_table(mission: Mission, hk: dict[str, Any], pairs: int = 2) -> Table:
    """HK parameters in `pairs` column pairs, values in display units, coloured by their limits."""
    t = Table(title="housekeeping", expand=True, show_edge=False, pad_edge=False, padding=(0, 1))
    for _ in range(pairs):
        t.add_column("parameter", style="dim", no_wrap=True)
        t.add_column("value", justify="right", no_wrap=True)
    cells: list[tuple[str, Text]] = []
    for packet in mission.hk_packets.values():
        for p in packet.parameters:
            name = p.name
            v = hk.get(name)
            if v is None:
                cells.append((name, Text("-")))
                continue
            state = mission.limit_state(name, v) if isinstance(v, int | float) else "ok"
            if name in ("dict_hash", "clcw") and isinstance(v, int | float):
                label = f"0x{int(v):08x}"
            else:
                value, unit = shown_quantity(mission, v, p.unit) if isinstance(v, int | float) else (v, p.unit)
                label = f"{_fmt(value)} {unit}".rstrip()
            label += "  RED" if state == "red" else "  YEL" if state == "yellow" else ""
            cells.append((name, Text(label, style=COLOURS[state])))
    rows = (len(cells) + pairs - 1) // pairs
    for i in range(rows):
        row: list[str | Text] = []
        for j in range(pairs):
            k = i + j * rows
            name, value = cells[k] if k < len(cells) else ("", Text(""))
            row += [name, value]
        t.add_row(*row)
    return t


def render(
    snap: dict[str, Any], mission: Mission, now: float | None = None, width: int = 140, height: int | None = None
) -> Group:
    """The whole watch screen for one snapshot of the ground state, `width` columns wide and,
    given a `height`, no taller: the events pane gets the rows the rest leaves."""
    now = time.time() if now is None else now
    hk = snap["hk"]
    link = snap["link"]
    mode = hk.get("mode", "?")
    pose = (
        f"x {_fmt(hk.get('x_m', '-'))} m  y {_fmt(hk.get('y_m', '-'))} m  "
        f"heading {_fmt(hk.get('heading_deg', '-'))} deg  speed {_fmt(hk.get('speed_mph', '-'))} m/h"
    )
    head = Text.assemble(
        ("MODE ", "bold"), (f"{mode}", "bold green" if mode in ("STANDBY", "DRIVE") else "bold red"),
        "   ", ("POSE ", "bold"), pose,
    )
    clcw = link.clcw
    clcw_text = (
        f"V(R) {clcw.report_value} lockout {int(clcw.lockout)} wait {int(clcw.wait)} "
        f"retransmit {int(clcw.retransmit)} FARM-B {clcw.farm_b_counter}"
        if clcw is not None else "none yet"
    )
    # the link panel in two label/value pairs per row where the width allows
    cells: list[tuple[str, Text | str]] = [
        ("link", Text(("UP " if link.up else "DOWN ") + link.url, style="green" if link.up else "bold red")),
        ("last contact", _age(link.last_contact, now)),
        ("frames", f"ok {link.frames_ok}  bad {link.frames_bad}  lost {link.frames_lost}  TC sent {link.tc_frames_sent}"
                   + (f"  TM auth failed {link.tm_auth_failed}" if link.tm_auth_failed else "")),
        ("packets", f"{snap['packets']}  HK {snap['hk_count']} ({_age(snap['hk_time'], now)})"),
        ("CLCW", clcw_text),
        ("COP-1", f"{link.cop_state or '-'}  queued {link.cop_queued}  unacknowledged {link.cop_sent}"),
    ]
    if snap.get("rover_dict_hash") is not None:
        ok = snap["rover_dict_hash"] == mission.hash
        cells.append(("dictionary", Text(f"rover {snap['rover_dict_hash']:08x} ground {mission.hash:08x}",
                                         style="" if ok else "bold red")))
    wide: list[tuple[str, Text | str]] = []
    if link.note:
        wide.append(("note", Text(link.note, style="yellow")))
    for a in snap.get("alarms", ()):
        wide.append((
            "ALARM" if not a.acknowledged else "alarm",
            Text(f"{a.name}: {a.message} ({a.rejected} rejected, last {_age(a.last_time, now)})",
                 style="dim" if a.acknowledged else "bold white on red"),
        ))
    link_pairs = 2 if width >= 110 else 1
    lt = Table.grid(padding=(0, 2), expand=True)
    label_width = max(len(label) for label, _ in cells + wide)
    for _ in range(link_pairs):
        lt.add_column(style="dim", no_wrap=True, min_width=label_width)
        lt.add_column(no_wrap=True, overflow="ellipsis")
    for i in range(0, len(cells), link_pairs):
        row: list[Text | str] = []
        for label, value in cells[i:i + link_pairs]:
            row += [label, value]
        lt.add_row(*row)
    for label, value in wide:
        lt.add_row(label, value)
    top = Group(head, Panel(lt, title="link"), hk_table(mission, hk, max(1, min(4, width // HK_PAIR_WIDTH))))
    events = snap["events"]
    if height is not None:
        used = len(Console(width=width, file=io.StringIO()).render_lines(top, pad=False))
        events = events[-max(MIN_EVENT_ROWS, height - used - 4):] if events else events
    et = Table(title="events", expand=True, show_edge=False)
    et.add_column("age", justify="right", no_wrap=True)
    et.add_column("event", no_wrap=True)
    et.add_column("message", no_wrap=True, overflow="ellipsis", ratio=1)
    for e in reversed(events):
        et.add_row(_age(e.ground_time, now), Text(e.name, style=SEVERITY_STYLE.get(e.severity, "")),
                   event_message(mission, e))
    return Group(top, et)


def render_to_string(state: GroundState, width: int = 140, now: float | None = None, height: int | None = None) -> str:
    """The screen as plain text (for tests, logs and the benchmark); `height` fits it to a terminal."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False, record=False)
    console.print(render(state.snapshot(), state.mission, now, width, height))
    return buf.getvalue()


def watch_loop(state: GroundState, stop: Callable[[], bool], refresh_hz: float = 4.0, console: Console | None = None) -> None:
    """Show the live view, fitted to the terminal's size as it is now, until `stop()` is true
    (or Ctrl-C)."""
    from rich.live import Live

    console = console or Console()

    def screen() -> Group:
        # one line fewer than the terminal: Live keeps its cursor on the line below
        return render(state.snapshot(), state.mission, width=console.width, height=console.height - 1)

    with Live(screen(), console=console, refresh_per_second=refresh_hz, screen=False) as live:
        try:
            while not stop():
                time.sleep(1.0 / refresh_hz)
                live.update(screen())
        except KeyboardInterrupt:
            pass
