"""`farside gs dict`: the dictionary as rich tables (commands, telemetry, events, parameters)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hil.errors import FarsideError
from hil.gs.mission import Mission
from protocols.dictionary import Arg, Parameter


def _range(a: Arg | Parameter) -> str:
    r = a.range
    return f"{r[0]:g} .. {r[1]:g}" if r else ""


def _limits(p: Arg) -> Text:
    lim = p.limits
    if not lim:
        return Text("")
    out = Text()
    if "yellow" in lim:
        out.append(f"yellow {lim['yellow'][0]:g}..{lim['yellow'][1]:g}", style="yellow")
    if "red" in lim:
        out.append(f"  red {lim['red'][0]:g}..{lim['red'][1]:g}", style="red")
    return out


def args_table(mission: Mission, title: str, args: Sequence[Arg]) -> Table:
    t = Table(title=title)
    for c in ("argument", "type", "unit", "range", "enum / description"):
        t.add_column(c)
    for a in args:
        desc = a.description
        if a.enum is not None:
            desc = (desc + " " if desc else "") + "one of " + ", ".join(mission.enum(a.enum).values())
        t.add_row(a.name, a.type, a.unit, _range(a), desc)
    return t


def render_dict(mission: Mission, what: str, name: str | None = None) -> RenderableType:
    m = mission
    if what == "commands":
        t = Table(title=f"commands ({len(m.commands_by_name)})")
        for col in ("name", "PUS", "arguments", "description"):
            t.add_column(col)
        for c in m.commands_by_name.values():
            args = " ".join(f"{a.name}[{a.unit or a.type}]" for a in c.args)
            t.add_row(c.name, f"{c.service}/{c.subservice}", args, c.description)
        return t
    if what == "telemetry":
        t = Table(title="housekeeping parameters")
        for col in ("packet", "name", "type", "unit", "calibration", "limits", "description"):
            t.add_column(col)
        for h in m.hk_packets.values():
            for p in h.parameters:
                poly = p.calibration
                cal = " + ".join(f"{c:g}*raw^{i}" for i, c in enumerate(poly) if c) if poly else ""
                desc = p.description or (f"enum {p.enum}" if p.enum is not None else "")
                t.add_row(h.name, p.name, p.type, p.unit, cal, _limits(p), desc)
        return t
    if what == "events":
        t = Table(title=f"events ({len(m.events_by_id)})")
        for col in ("id", "name", "severity", "arguments", "message"):
            t.add_column(col)
        for e in m.events_by_id.values():
            t.add_row(str(e.id), e.name, e.severity, " ".join(a.name for a in e.args), e.message)
        return t
    if what == "parameters":
        t = Table(title="parameters (PARAM_GET / PARAM_SET)")
        for col in ("id", "name", "unit", "range", "default", "description"):
            t.add_column(col)
        for q in m.parameters_by_name.values():
            t.add_row(str(q.id), q.name, q.unit, _range(q), f"{q.default:g}", q.description)
        return t
    # show NAME
    if not name:
        raise FarsideError("dict show: give a command, telemetry, event or parameter name")
    key = name.upper()
    if key in m.commands_by_name:
        cd = m.commands_by_name[key]
        head = Text.assemble((cd.name, "bold"), f"  PUS {cd.service}/{cd.subservice}  ", cd.description)
        return Group(head, args_table(m, f"{cd.name} arguments", cd.args))
    if key in m.events_by_name:
        e = m.events_by_name[key]
        head = Text.assemble((e.name, "bold"), f"  event {e.id}  severity {e.severity}  ", e.message)
        return Group(head, args_table(m, f"{e.name} arguments", e.args))
    if name in m.hk_parameters:
        hp = m.hk_parameters[name]
        tt = args_table(m, f"telemetry {name}", [hp])
        return Group(tt, Text.assemble("limits: ", _limits(hp)) if hp.limits else Text(""))
    if name in m.parameters_by_name:
        pp = m.parameters_by_name[name]
        return Text(f"parameter {pp.id} {pp.name} [{pp.unit}] range {_range(pp)} default {pp.default:g}: {pp.description}")
    raise FarsideError(f"dict show: nothing named {name!r} (commands, telemetry, events or parameters)")
