"""`farside gs dict`: the dictionary as rich tables (commands, telemetry, events, parameters)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hil.errors import FarsideError
from hil.gs.mission import Mission


def _range(a: dict[str, Any]) -> str:
    r = a.get("range")
    return f"{r[0]:g} .. {r[1]:g}" if r else ""


def _limits(p: dict[str, Any]) -> Text:
    lim = p.get("limits")
    if not lim:
        return Text("")
    out = Text()
    if "yellow" in lim:
        out.append(f"yellow {lim['yellow'][0]:g}..{lim['yellow'][1]:g}", style="yellow")
    if "red" in lim:
        out.append(f"  red {lim['red'][0]:g}..{lim['red'][1]:g}", style="red")
    return out


def args_table(mission: Mission, title: str, args: list[dict[str, Any]]) -> Table:
    t = Table(title=title)
    for c in ("argument", "type", "unit", "range", "enum / description"):
        t.add_column(c)
    for a in args:
        desc = a.get("description", "")
        if "enum" in a:
            desc = (desc + " " if desc else "") + "one of " + ", ".join(mission.raw["enums"][a["enum"]].values())
        t.add_row(a["name"], a["type"], a.get("unit", ""), _range(a), desc)
    return t


def render_dict(mission: Mission, what: str, name: str | None = None) -> RenderableType:
    m = mission
    if what == "commands":
        t = Table(title=f"commands ({len(m.commands)})")
        for col in ("name", "PUS", "arguments", "description"):
            t.add_column(col)
        for c in m.commands.values():
            args = " ".join(f"{a['name']}[{a.get('unit') or a['type']}]" for a in c["args"])
            t.add_row(c["name"], f"{c['service']}/{c['subservice']}", args, c.get("description", ""))
        return t
    if what == "telemetry":
        t = Table(title="housekeeping parameters")
        for col in ("packet", "name", "type", "unit", "calibration", "limits", "description"):
            t.add_column(col)
        for h in m.hk.values():
            for p in h["parameters"]:
                poly = p.get("calibration", {}).get("poly")
                cal = " + ".join(f"{c:g}*raw^{i}" for i, c in enumerate(poly) if c) if poly else ""
                desc = p.get("description", "") or (f"enum {p['enum']}" if "enum" in p else "")
                t.add_row(h["name"], p["name"], p["type"], p.get("unit", ""), cal, _limits(p), desc)
        return t
    if what == "events":
        t = Table(title=f"events ({len(m.events)})")
        for col in ("id", "name", "severity", "arguments", "message"):
            t.add_column(col)
        for e in m.events.values():
            t.add_row(str(e["id"]), e["name"], e["severity"], " ".join(a["name"] for a in e["args"]), e["message"])
        return t
    if what == "parameters":
        t = Table(title="parameters (PARAM_GET / PARAM_SET)")
        for col in ("id", "name", "unit", "range", "default", "description"):
            t.add_column(col)
        for q in m.parameters.values():
            t.add_row(str(q["id"]), q["name"], q.get("unit", ""), _range(q), f"{q['default']:g}", q.get("description", ""))
        return t
    # show NAME
    if not name:
        raise FarsideError("dict show: give a command, telemetry, event or parameter name")
    key = name.upper()
    if key in m.commands:
        cd: dict[str, Any] = m.commands[key]
        head = Text.assemble((cd["name"], "bold"), f"  PUS {cd['service']}/{cd['subservice']}  ", cd.get("description", ""))
        return Group(head, args_table(m, f"{cd['name']} arguments", cd["args"]))
    if key in m.events_by_name:
        e = m.events_by_name[key]
        head = Text.assemble((e["name"], "bold"), f"  event {e['id']}  severity {e['severity']}  ", e["message"])
        return Group(head, args_table(m, f"{e['name']} arguments", e["args"]))
    if name in m.hk_params:
        hp: dict[str, Any] = m.hk_params[name]
        tt = args_table(m, f"telemetry {name}", [hp])
        return Group(tt, Text.assemble("limits: ", _limits(hp)) if hp.get("limits") else Text(""))
    if name in m.parameters:
        pp: dict[str, Any] = m.parameters[name]
        return Text(f"parameter {pp['id']} {pp['name']} [{pp.get('unit', '')}] range {_range(pp)} default {pp['default']:g}: {pp.get('description', '')}")
    raise FarsideError(f"dict show: nothing named {name!r} (commands, telemetry, events or parameters)")
