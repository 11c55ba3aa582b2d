"""`farside gs`: the ground station (command, watch, archive, replay, export, plot, run, dict).

Exit codes of `send` and `run` (by the verification stage that failed):
  0 completed   1 a procedure check failed   2 bad input, link down, dictionary mismatch
  3 rejected / not accepted   4 start failed   5 completion failed   6 timeout
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from hil.errors import FarsideError
from protocols.errors import ProtocolError

LINK_HELP = "pyserial URL or device: /dev/ttyACM0, /dev/pts/N, socket://host:port (env FARSIDE_LINK)"


class GsGroup(click.Group):
    """Turns protocol errors into FarsideError so the CLI prints one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ProtocolError as exc:
            raise FarsideError(str(exc)) from None


def _mission(dictionary: str | None) -> Any:
    from hil.gs.mission import Mission

    return Mission.load(dictionary)


def link_options(f: Any) -> Any:
    f = click.option("--link", "link", envvar="FARSIDE_LINK", help=LINK_HELP)(f)
    f = click.option("--dictionary", type=click.Path(dir_okay=False), help="dictionary JSON (default: the project's)")(f)
    f = click.option("--keys", metavar="PATH|BOARD",
                     help="SDLS key file or a board's keys (default: $FARSIDE_KEYS, else the sim board's dev keys)")(f)
    f = click.option("--spi", type=int, default=1, show_default=True, help="security parameter index")(f)
    f = click.option("--archive-root", type=click.Path(file_okay=False), default="archive", show_default=True,
                     help="folder for session archives (one folder per session)")(f)
    f = click.option("--rotate-mb", type=float, default=64.0, show_default=True,
                     help="start a new archive part after this many MiB")(f)
    f = click.option("--force", is_flag=True, help="command even if the rover's dictionary hash differs")(f)
    f = click.option("--bd", is_flag=True, help="send Type-BD (bypass) frames instead of COP-1 Type-AD")(f)
    f = click.option("--baud", type=int, default=115200, show_default=True)(f)
    f = click.option("--connect-timeout", type=float, default=10.0, show_default=True,
                     help="seconds to wait for the rover's telemetry (dictionary hash)")(f)
    return f


def open_session(opts: dict[str, Any], check: bool = True, topics: tuple[str, ...] = ("packets", "link", "commands")) -> Any:
    """The link's ground-station service as a session (`hil.gs.client.RemoteSession`): the one
    running for the link, or one started here for this command's lifetime."""
    from hil.gs.client import connect

    s = connect(opts, topics=topics)
    if check:
        try:
            s.check_dictionary(opts["connect_timeout"])
        except BaseException:
            s.close()
            raise
    return s


@click.group(cls=GsGroup)
def cli() -> None:
    """Ground station: command the rover, watch, archive, replay, export and plot telemetry.

    \b
    send exit codes: 0 completed, 2 bad input/link/dictionary, 3 rejected or not
    accepted, 4 start failed, 5 completion failed, 6 timeout (run: 1 check failed).
    """


# --- send ------------------------------------------------------------------------------


@cli.command()
@click.argument("command")
@click.argument("args", nargs=-1)
@click.option("--at", "at", help="time-tag: rover seconds, +30s / +5min from the rover clock, or ISO UTC")
@click.option("--timeout", type=float,
              help="seconds to wait for the reports (default: the command's expected duration + round trip + 30 s)")
@click.option("--until", type=click.Choice(["accepted", "started", "completed"]), default="completed", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="print only the final line, not each stage")
@link_options
def send(command: str, args: tuple[str, ...], at: str | None, timeout: float | None, until: str, quiet: bool,
         **opts: Any) -> int:
    """Send COMMAND ARG=VALUE ... and print each verification stage as it arrives.

    Values are typed and may carry units (speed_mph=5km/h, angle_deg=1.57rad,
    time_s=2min); enums by name (mode=STANDBY). Everything is checked against the
    dictionary before the link is opened. Goes through the link's ground-station
    service (`gs serve`), or starts one for its own lifetime.
    """
    from hil.gs.client import REPORT_STAGES, default_timeout_s, describe
    from hil.gs.commanding import release_time

    mission = _mission(opts.get("dictionary"))
    values = mission.parse_args(command, list(args))  # bad input fails before any I/O
    mission.encode_args(command, values)
    if at is not None and not at.startswith("+"):
        release_time(at, None)
    s = open_session(opts, topics=("commands", "link"))
    cmd: dict[str, Any] | None = None
    try:
        if timeout is None:
            timeout = default_timeout_s(mission, command, values, s.status["link"].get("rtt_s"))

        def stage(st: dict[str, Any]) -> None:
            if not quiet:
                detail = f"  {st['detail']}" if st.get("detail") else ""
                click.echo(f"  {st['stage']:<17} {st['elapsed_s']:8.3f} s{detail}")

        cmd = s.submit(command.upper(), values, at)
        cmd = s.follow(cmd["id"], timeout, until, stage)
        reps = [REPORT_STAGES[x["stage"]] for x in cmd["stages"] if x["stage"] in REPORT_STAGES]
        rel = f" (release at {cmd['at']})" if cmd.get("at") else ""
        click.echo(f"{describe(cmd)}: " + ", ".join(reps) + rel)
    except KeyboardInterrupt:
        raise FarsideError(_interrupted(s, cmd), 130) from None
    finally:
        s.close()
    return 0


def _interrupted(s: Any, cmd: dict[str, Any] | None) -> str:
    """What Ctrl-C during `send` leaves behind, and how to stop it."""
    if cmd is None:
        return "interrupted before the command was queued: nothing was sent"
    try:
        cmd = s.http.get(f"/api/commands/{cmd['id']}")
    except FarsideError:
        pass
    assert cmd is not None
    from hil.gs.client import describe

    stages = [x["stage"].lower() for x in cmd["stages"]]
    what = describe(cmd)
    if cmd.get("outcome"):
        return f"interrupted: {what} already ended ({', '.join(stages)})"
    if "sent" not in stages:
        if s.embedded is not None:
            return f"interrupted: {what} was not sent and will not be (queued only; the service stops with this command)"
        return f"interrupted: {what} is still queued in the service at {s.entry.http}; it will be sent"
    stop = f"; stop it with: farside gs send STOP --link {s.url}" if cmd["name"] in ("DRIVE_DISTANCE", "DRIVE_ARC", "TURN") else ""
    return f"interrupted: {what} may still execute on the rover ({', '.join(stages[1:])}){stop}"


# --- watch / replay / run -------------------------------------------------------------------


def _run_watch(state: Any, stop: Any, seconds: float | None, once: bool) -> None:
    from hil.gs.watch import render_to_string, watch_loop

    if once or not sys.stdout.isatty():
        if seconds:
            until = time.monotonic() + seconds
            while time.monotonic() < until and not stop():
                time.sleep(0.05)
        click.echo(render_to_string(state, width=140))
        return
    end: float | None = time.monotonic() + seconds if seconds else None
    watch_loop(state, lambda: stop() or (end is not None and time.monotonic() >= end))


@cli.command()
@click.option("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
@click.option("--once", is_flag=True, help="print one screen (after --seconds) and exit")
@link_options
def watch(seconds: float | None, once: bool, **opts: Any) -> int:
    """Live view: housekeeping with limits, events, link state, mode and pose."""
    s = open_session(opts, check=False)
    try:
        _run_watch(s.state, lambda: False, seconds, once)
    finally:
        s.close()
    return 0


@cli.command()
@click.argument("archive", type=click.Path())
@click.option("--speed", type=float, default=1.0, show_default=True, help="x recorded pace; 0 = as fast as possible")
@click.option("--procedure", type=click.Path(dir_okay=False), help="run this procedure on the replay instead of watching")
@click.option("--once", is_flag=True, help="print the final screen only")
@click.option("--dictionary", type=click.Path(dir_okay=False))
def replay(archive: str, speed: float, procedure: str | None, once: bool, dictionary: str | None) -> int:
    """Play an archive back into watch (or into a procedure)."""
    from hil.gs.replay import Replay

    mission = _mission(dictionary)
    r = Replay(archive, mission, speed=speed)
    if procedure:
        r.start()
        try:
            _run_proc(Path(procedure), r.state, None)
        finally:
            r.stop()
        return 0
    r.start()
    try:
        if once:
            r.done.wait()
            if r.error is not None:
                raise FarsideError(f"replay: {r.error}")
        _run_watch(r.state, r.done.is_set, None, once)
    finally:
        r.stop()
    return 0


def _run_proc(path: Path, state: Any, session: Any) -> None:
    from hil.gs.api import GroundApi
    from hil.gs.procedure import StepResult, run_procedure

    gs = GroundApi(state, session)

    def report(res: StepResult) -> None:
        mark = click.style("ok  ", fg="green") if res.ok else click.style("FAIL", fg="red", bold=True)
        click.echo(f"{mark} {path.name}:{res.line}: {res.text}  -> {res.detail}")

    run_procedure(path, gs, report)
    click.echo(f"procedure {path.name}: all steps passed")


@cli.command()
@click.argument("procedure", type=click.Path(dir_okay=False))
@click.option("--replay", "replay_from", type=click.Path(), help="run against an archive instead of a link")
@click.option("--speed", type=float, default=1.0, show_default=True,
              help="replay pace, x recorded (0 = at once: awaits may then miss what already went by)")
@link_options
def run(procedure: str, replay_from: str | None, speed: float, **opts: Any) -> int:
    """Run a procedure (plain steps or Python); stops at the first failed check."""
    path = Path(procedure)
    if not path.exists():
        raise FarsideError(f"no procedure file {path}")
    if replay_from:
        from hil.gs.replay import Replay

        r = Replay(replay_from, _mission(opts.get("dictionary")), speed=speed).start()
        try:
            _run_proc(path, r.state, None)
        finally:
            r.stop()
        return 0
    s = open_session(opts)
    try:
        _run_proc(path, s.state, s)
    finally:
        s.close()
    return 0


# --- export / plot / archive ----------------------------------------------------------------


SESSION_HELP = "one session of the archive root: its folder name (see `gs archive list`) or path"


@cli.command()
@click.argument("archive", type=click.Path())
@click.option("--session", help=SESSION_HELP)
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="folder for one file per table")
@click.option("--dictionary", type=click.Path(dir_okay=False))
def export(archive: str, session: str | None, fmt: str, out: str, dictionary: str | None) -> int:
    """Archive -> decoded telemetry (one table per packet type, calibrated, with units).

    ARCHIVE is an archive root (every session, oldest first), one session folder, or a part file.
    """
    from hil.gs.archive import resolve_session
    from hil.gs.export import export_archive

    t = time.perf_counter()
    done = export_archive(_mission(dictionary), resolve_session(archive, session), Path(out), fmt)
    dt = time.perf_counter() - t
    for name, rows in done.rows.items():
        click.echo(f"{name}: {rows} rows")
    click.echo(f"wrote {len(done.files)} files to {out} in {dt:.2f} s")
    return 0


@cli.command()
@click.argument("archive", type=click.Path(), required=False)
@click.option("--session", help=SESSION_HELP)
@click.option("-p", "--param", "params", multiple=True, help="HK parameter to plot against time (repeatable)")
@click.option("--traverse", is_flag=True, help="plot the rover's tracks with fault and hazard markers")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="PNG file to write")
@click.option("--seconds", type=float, default=30.0, show_default=True, help="with --link: how long to record first")
@link_options
def plot(archive: str | None, session: str | None, params: tuple[str, ...], traverse: bool, out: str, seconds: float,
         **opts: Any) -> int:
    """PNG plots of parameters over time, or the traverse, from an archive (a root, one session
    folder or --session NAME) or a live link."""
    from hil.gs.export import decode_archive
    from hil.gs.plot import plot_parameters, plot_traverse, save_png

    if not params and not traverse:
        raise FarsideError("plot: give -p NAME (repeatable) and/or --traverse")
    mission = _mission(opts.get("dictionary"))
    if archive is None:
        s = open_session(opts, check=False, topics=("link",))
        try:
            time.sleep(seconds)
            archive = s.archive_folder
        finally:
            s.close()
        if archive is None:
            raise FarsideError(f"the service on {opts['link']} keeps no archive")
    from hil.gs.archive import resolve_session

    tables = decode_archive(mission, resolve_session(archive, session))
    hk = tables[mission.hk_packets[min(mission.hk_packets)].name.lower()]
    outp = Path(out)
    written = []
    if params:
        written.append(save_png(plot_parameters(hk, list(params)), outp))
    if traverse:
        tp = outp if not params else outp.with_name(outp.stem + "-traverse.png")
        written.append(save_png(plot_traverse(hk, tables["events"]), tp))
    for w in written:
        click.echo(f"wrote {w}")
    return 0


@cli.command("archive")
@click.argument("action", type=click.Choice(["list", "check", "repair", "records"]))
@click.argument("archive", type=click.Path(), default="archive")
@click.option("--session", help=SESSION_HELP)
@click.option("--dictionary", type=click.Path(dir_okay=False), help="dictionary JSON, for `list`'s packet count")
def archive_cmd(action: str, archive: str, session: str | None, dictionary: str | None) -> int:
    """List the sessions of an archive root (folder, start and end UTC, records, packets, size);
    check or repair parts (truncate a torn tail; rewrite a damaged part from its good records);
    or print every record (`records`). ARCHIVE defaults to ./archive."""
    from hil.gs.archive import (
        KIND_NAMES,
        check_part,
        part_paths,
        read_records,
        repair_part,
        resolve_session,
        session_folders,
        summarise_session,
    )

    target = resolve_session(archive, session)
    if action == "list":
        from hil.gs.export import count_packets

        mission = _mission(dictionary)

        def utc(t: float | None) -> str:
            return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))

        def size(n: int) -> str:
            for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
                if n >= scale:
                    return f"{n / scale:.1f} {unit}"
            return f"{n} B"

        rows = [("session", "start UTC", "end UTC", "records", "packets", "size")]
        for folder in session_folders(target):
            info = summarise_session(folder)
            rows.append((folder.name, utc(info.start), utc(info.end), str(info.records),
                         str(count_packets(mission, folder)), size(info.size)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            click.echo("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        click.echo(f"{len(rows) - 1} sessions in {archive}")
        return 0
    if action == "records":
        for r in read_records(target):
            click.echo(f"{r.time:.3f} {KIND_NAMES.get(r.kind, r.kind)} {len(r.payload)}")
        return 0
    for part in part_paths(target):
        if action == "check":
            res = check_part(part)
            tail = f", torn tail: {res.problem}" if res.problem else ""
            click.echo(f"{part.name}: {res.records} records{tail}")
        else:
            click.echo(f"{part.name}: dropped {repair_part(part)} octets")
    return 0


# --- dict ---------------------------------------------------------------------------------


@cli.command("dict")
@click.argument("what", type=click.Choice(["commands", "telemetry", "events", "parameters", "show"]))
@click.argument("name", required=False)
@click.option("--dictionary", type=click.Path(dir_okay=False))
def dict_cmd(what: str, name: str | None, dictionary: str | None) -> int:
    """Browse the dictionary: `dict commands`, `dict show DRIVE_DISTANCE`."""
    from rich.console import Console

    from hil.gs.dictview import render_dict

    console = Console(width=int(os.environ.get("COLUMNS", "120")))
    console.print(render_dict(_mission(dictionary), what, name))
    return 0


# --- shell ---------------------------------------------------------------------------------


@cli.command()
@click.option("--timeout", type=float, default=30.0, show_default=True)
@link_options
def shell(timeout: float, **opts: Any) -> int:
    """Interactive commanding with tab completion of commands and arguments."""
    from hil.gs.shell import GsShell

    s = open_session(opts)
    try:
        GsShell(s, timeout).cmdloop()
    finally:
        s.close()
    return 0


# --- serve ---------------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on (anything but loopback needs the token)")
@click.option("--port", type=int, default=0, show_default=True, help="TCP port (0: any free one)")
@click.option("--token", help="the clients' token (default: a random one per start)")
@click.option("--require-token", is_flag=True, help="ask the token of loopback clients too")
@link_options
def serve(host: str, port: int, token: str | None, require_token: bool, **opts: Any) -> int:
    """Serve the link: one process owns it (COP-1, SDLS, archive, verification); the CLI,
    the web console and tests are its clients (HTTP + WebSocket JSON)."""
    import asyncio

    from hil.gs.service import ServiceOptions, build_service, serve_forever

    o = ServiceOptions.from_opts(opts, host=host, port=port, token=token, require_token=require_token)
    service = build_service(o)

    def ready(svc: Any) -> None:
        click.echo(f"serving {svc.session.url} (pid {os.getpid()}, archive {svc.session.archive.folder})")
        click.echo(f"console: {svc.console_url()}")
        if not svc.require_token and host in ("127.0.0.1", "localhost", "::1"):
            click.echo(f"token for remote clients: {svc.token}")
        sys.stdout.flush()

    asyncio.run(serve_forever(service, ready))
    return 0
