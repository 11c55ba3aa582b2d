"""`farside flash`: put the rover on a Pico or a virtual board."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

BOARDS = ["pico", "pico_w", "pico2", "sim"]


@click.command(name="flash")
@click.option(
    "--board", default="sim", show_default=True, help="Board definition: pico, pico_w, pico2, sim."
)
@click.option(
    "--port",
    default="auto",
    show_default=True,
    help="auto (USB VID 0x2E8A), virtual (the running virtual board; with --board sim one is started if none runs), or a device path.",
)
@click.option(
    "--source",
    type=click.Path(path_type=Path),
    default=None,
    help="Firmware source folder (default: firmware_py of this checkout).",
)
@click.option(
    "--keys",
    default=None,
    metavar="PATH|BOARD",
    help="Key file, or a board's keys from `farside keys new` (default: $FARSIDE_KEYS; "
    "the dev keys only for --board sim). Written to the board.",
)
@click.option(
    "--dictionary",
    type=click.Path(path_type=Path),
    default=None,
    help="Dictionary JSON (default: protocols/dictionary.json).",
)
@click.option("--dry-run", is_flag=True, help="List what would change on the board; write nothing.")
@click.option(
    "--verify",
    "verify_only",
    is_flag=True,
    help="Check the board's firmware against the image; write nothing.",
)
@click.option("--no-reset", is_flag=True, help="Install but do not reset the board.")
@click.option("--no-wait", is_flag=True, help="Reset but do not wait for the rover's BOOT event.")
@click.option(
    "--boot-timeout",
    default=None,
    help="Seconds to wait for the BOOT event (default: the board definition's boot_timeout_s).",
)
@click.option(
    "--min-micropython",
    default="1.20.0",
    show_default=True,
    help="Refuse boards whose MicroPython is older.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
def cli(
    board: str,
    port: str,
    source: Path | None,
    keys: str | None,
    dictionary: Path | None,
    dry_run: bool,
    verify_only: bool,
    no_reset: bool,
    no_wait: bool,
    boot_timeout: str | None,
    min_micropython: str,
    as_json: bool,
) -> None:
    """Compile firmware_py, upload what changed, switch slots atomically, reset, and
    check the rover's BOOT event (firmware version and dictionary hash)."""
    from hil.errors import FarsideError
    from hil.flash import FlashOptions, flash

    try:
        parts = [int(p) for p in min_micropython.split(".")]
        minimum = (parts + [0, 0, 0])[:3]
    except ValueError as exc:
        raise FarsideError(
            f"--min-micropython: expected a version like 1.22.0, got {min_micropython!r}"
        ) from exc
    try:
        boot_timeout_s = None if boot_timeout is None else float(boot_timeout)
    except ValueError:
        boot_timeout_s = 0.0
    if boot_timeout_s is not None and not boot_timeout_s > 0:
        raise FarsideError(
            f"--boot-timeout: expected a positive number of seconds, got {boot_timeout!r}"
        )
    options = FlashOptions(
        board=board,
        port=port,
        source=source,
        keys=None,
        dictionary=dictionary,
        dry_run=dry_run,
        verify_only=verify_only,
        reset=not no_reset,
        wait_boot=not no_wait,
        boot_timeout_s=boot_timeout_s,
        min_micropython=(minimum[0], minimum[1], minimum[2]),
    )
    from hil.flash.image import load_board_definition
    from hil.flash.install import boot_timeout as check_boot_timeout
    from hil.flash.ports import resolve_port

    load_board_definition(board)  # bad input fails here, before any progress display
    check_boot_timeout(options)  # a bad boot_timeout_s in the board definition
    if port == "virtual" and board == "sim" and not dry_run and not verify_only:
        from hil.board import list_boards, start_board

        if not list_boards():
            vb = start_board(board="sim")
            click.echo(
                f"started virtual board {vb.name} on {vb.port} (farside board stop {vb.name})",
                err=True,
            )
    resolve_port(port)
    from hil.gs.keys import SIM_BOARDS, resolve_keys

    # one line, before anything is written: a real board never gets the dev keys
    options.keys = resolve_keys(keys, board=board, allow_dev=board in SIM_BOARDS).path
    if as_json:
        report = flash(options)
        click.echo(json.dumps(report.to_json()))
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        _print_report(Console(), flash(options).to_json())
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[path]}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("build", total=None, path="")

        def progress(phase: str, done: int, total: int, path: str) -> None:
            bar.update(task, description=phase, completed=done, total=total or None, path=path)

        report = flash(options, progress)
    _print_report(Console(), report.to_json())


def _print_report(console: Any, r: dict[str, Any]) -> None:
    moved = [f for f in r["files"] if f["action"] != "keep"]
    if r["dry_run"]:
        console.print(f"dry run on {r['port']} (MicroPython {r['micropython']}): slot {r['slot']}")
        for f in moved:
            console.print(f"  {f['action']:7} {f['path']}  ({f['size']} B)")
        for name in r["root_files"]:
            console.print(f"  install {name}")
        if r["up_to_date"]:
            console.print("  nothing to change: the board is up to date")
        return
    counts: dict[str, int] = {}
    for f in r["files"]:
        counts[f["action"]] = counts.get(f["action"], 0) + 1
    summary = ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
    if r["up_to_date"]:
        console.print(f"{r['port']}: up to date (slot {r['slot']}, {summary})")
    else:
        console.print(
            f"{r['port']}: slot {r['slot']} installed ({summary}); "
            f"{r['payload_bytes']} B of files, {r['wire_bytes']} B on the wire, {r['seconds']:.1f} s"
        )
    for note in r.get("notes") or ():
        console.print(f"note: {note}")
    boot = r.get("boot")
    if boot:
        v = boot["version"]
        console.print(
            f"rover booted: firmware {v >> 16}.{(v >> 8) & 0xFF}.{v & 0xFF}, dictionary {boot['dict_hash']:08x}, "
            f"boot {boot['boot_count']}, reset {boot['reset_cause_name']}"
        )
