"""`farside gs watch`: a live view of housekeeping, events, link and pose.

`render(snapshot)` is a pure function of the ground state's snapshot, so tests
render to a string and check what an operator would see; `watch_loop` drives it
with rich.Live at a fixed refresh rate.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hil.gs.mission import Mission
from hil.gs.state import GroundState

COLOURS = {"red": "bold white on red", "yellow": "black on yellow", "ok": ""}
SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": ""}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1e5 else f"{v:.4g}"
    return str(v)


def _age(t: float | None, now: float) -> str:
    if t is None:
        return "never"
    dt = now - t
    return f"{dt:.1f} s ago" if dt < 120 else f"{dt / 60:.1f} min ago"


def hk_table(mission: Mission, hk: dict[str, Any]) -> Table:
    """HK parameters in two column pairs, values coloured by their limits."""
    t = Table(title="housekeeping", expand=True, show_edge=False, pad_edge=False)
    for _ in range(2):
        t.add_column("parameter", style="dim", no_wrap=True)
        t.add_column("value", justify="right", no_wrap=True)
    cells: list[tuple[str, Text]] = []
    for packet in mission.hk_packets.values():
        for p in packet.parameters:
            name = p.name
            v = hk.get(name)
            unit = p.unit
            if v is None:
                cells.append((name, Text("-")))
                continue
            state = mission.limit_state(name, v) if isinstance(v, int | float) else "ok"
            shown = f"0x{int(v):08x}" if name in ("dict_hash", "clcw") and isinstance(v, int | float) else _fmt(v)
            label = f"{shown} {unit}".rstrip() + ("  RED" if state == "red" else "  YEL" if state == "yellow" else "")
            cells.append((name, Text(label, style=COLOURS[state])))
    half = (len(cells) + 1) // 2
    for i in range(half):
        left = cells[i]
        right = cells[i + half] if i + half < len(cells) else ("", Text(""))
        t.add_row(left[0], left[1], right[0], right[1])
    return t


def render(snap: dict[str, Any], mission: Mission, now: float | None = None) -> Group:
    """The whole watch screen for one snapshot of the ground state."""
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
    lt = Table.grid(padding=(0, 2))
    lt.add_column(style="dim")
    lt.add_column()
    lt.add_row("link", Text(("UP " if link.up else "DOWN ") + link.url, style="green" if link.up else "bold red"))
    lt.add_row("last contact", _age(link.last_contact, now))
    auth = f"  TM auth failed {link.tm_auth_failed}" if link.tm_auth_failed else ""
    lt.add_row("frames", f"ok {link.frames_ok}  bad {link.frames_bad}  lost {link.frames_lost}  TC sent {link.tc_frames_sent}{auth}")
    lt.add_row("CLCW", clcw_text)
    lt.add_row("COP-1", f"{link.cop_state or '-'}  queued {link.cop_queued}  unacknowledged {link.cop_sent}")
    lt.add_row("packets", f"{snap['packets']}  HK {snap['hk_count']} ({_age(snap['hk_time'], now)})")
    if snap.get("rover_dict_hash") is not None:
        ok = snap["rover_dict_hash"] == mission.hash
        lt.add_row("dictionary", Text(f"rover {snap['rover_dict_hash']:08x} ground {mission.hash:08x}",
                                      style="" if ok else "bold red"))
    if link.note:
        lt.add_row("note", Text(link.note, style="yellow"))
    for a in snap.get("alarms", ()):
        lt.add_row(
            "ALARM" if not a.acknowledged else "alarm",
            Text(f"{a.name}: {a.message} ({a.rejected} rejected, last {_age(a.last_time, now)})",
                 style="dim" if a.acknowledged else "bold white on red"),
        )
    et = Table(title="events", expand=True, show_edge=False)
    et.add_column("age", justify="right", no_wrap=True)
    et.add_column("event", no_wrap=True)
    et.add_column("message")
    for e in reversed(snap["events"]):
        et.add_row(_age(e.ground_time, now), Text(e.name, style=SEVERITY_STYLE.get(e.severity, "")), e.message)
    return Group(head, Panel(lt, title="link"), hk_table(mission, hk), et)


def render_to_string(state: GroundState, width: int = 140, now: float | None = None) -> str:
    """The screen as plain text (for tests, logs and the benchmark)."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False, record=False)
    console.print(render(state.snapshot(), state.mission, now))
    return buf.getvalue()


def watch_loop(state: GroundState, stop: Callable[[], bool], refresh_hz: float = 4.0, console: Console | None = None) -> None:
    """Show the live view until `stop()` is true (or Ctrl-C)."""
    from rich.live import Live

    console = console or Console()
    with Live(render(state.snapshot(), state.mission), console=console, refresh_per_second=refresh_hz, screen=False) as live:
        try:
            while not stop():
                time.sleep(1.0 / refresh_hz)
                live.update(render(state.snapshot(), state.mission))
        except KeyboardInterrupt:
            pass
