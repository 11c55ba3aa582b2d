"""`farside board`: start, list, reset and stop virtual boards."""

from __future__ import annotations

import json

import click

from hil.errors import FarsideError


@click.group(name="board")
def cli() -> None:
    """Virtual boards: the MicroPython unix port in a pty, behaving like a Pico on USB."""


@cli.command()
@click.option(
    "--board",
    "board",
    default="sim",
    show_default=True,
    help="Board definition (boards/<name>.json).",
)
@click.option("--name", default=None, help="Name of the virtual board (default sim0, sim1, ...).")
@click.option("--micropython", default=None, help="Path of the MicroPython unix port to run.")
@click.option(
    "--flash-dir", default=None, help="Folder used as the board's flash (kept across restarts)."
)
@click.option(
    "--heapsize", default=None, help="MicroPython heap, e.g. 192K (default: the board's budget)."
)
@click.option(
    "--reenumerate", is_flag=True, help="A new port at every reset, as a Pico's USB re-enumerates."
)
@click.option(
    "--emulated",
    is_flag=True,
    help="An emulated Pico: the stock MicroPython rp2 firmware on an emulated RP2040, the rover's hardware at its pins.",
)
@click.option(
    "--firmware",
    default=None,
    help="The rp2 UF2 for --emulated (default: $FARSIDE_RP2_FIRMWARE, the user cache, then the project's shared copy).",
)
@click.option(
    "--pace",
    type=click.Choice(["realtime", "free"]),
    default="realtime",
    show_default=True,
    help="--emulated: never ahead of the wall clock, or let an idle chip run ahead.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the board's state as JSON.")
def start(
    board: str,
    name: str | None,
    micropython: str | None,
    flash_dir: str | None,
    heapsize: str | None,
    reenumerate: bool,
    emulated: bool,
    firmware: str | None,
    pace: str,
    as_json: bool,
) -> None:
    """Start a virtual board and print its serial device path (the REPL's), then on a
    second line the rover's link port when the board definition gives the link an
    interface of its own (e.g. --board sim_uart).

    The default is the MicroPython unix port in a pty; --emulated starts an emulated
    Pico (use --board pico, or another rp2 board definition)."""
    from hil.board import start_board

    if emulated and board == "sim":
        board = "pico"
    vb = start_board(
        board=board,
        name=name,
        flash_dir=flash_dir,
        micropython=micropython,
        heapsize=heapsize,
        reenumerate=reenumerate,
        emulated=emulated,
        firmware=firmware,
        pace=pace,
    )
    if as_json:
        click.echo(json.dumps(vb.state.to_json()))
    else:
        click.echo(vb.port)
        if vb.link_port:
            click.echo(vb.link_port)


@cli.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List running virtual boards."""
    from hil.board import list_boards

    boards = list_boards()
    if as_json:
        click.echo(json.dumps([b.to_json() for b in boards]))
        return
    if not boards:
        click.echo("no virtual boards running")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "board", "port", "link port", "serial number", "power", "flash dir")
    for b in boards:
        link = b.link_port or "-"
        table.add_row(b.name, b.board, b.port, link, b.serial_number, b.power, b.flash_dir)
    Console().print(table)


def _get(which: str | None) -> list:
    from hil.board import VirtualBoard, find_board, list_boards

    if which is None:
        boards = list_boards()
        if len(boards) != 1:
            seen = ", ".join(f"{b.name} ({b.port})" for b in boards) or "none"
            raise FarsideError(
                f"expected exactly one running virtual board (or a NAME), saw {seen}"
            )
        return [VirtualBoard(boards[0])]
    state = find_board(which)
    if state is None:
        seen = ", ".join(f"{b.name} ({b.port})" for b in list_boards()) or "none"
        raise FarsideError(
            f"expected a running virtual board named {which!r} (or with that port), saw {seen}"
        )
    return [VirtualBoard(state)]


@cli.command()
@click.argument("which", required=False)
@click.option("--all", "all_", is_flag=True, help="Stop every running virtual board.")
def stop(which: str | None, all_: bool) -> None:
    """Stop a virtual board (WHICH = name, serial number or port)."""
    from hil.board import VirtualBoard, list_boards

    targets = [VirtualBoard(s) for s in list_boards()] if all_ else _get(which)
    for vb in targets:
        vb.stop()
        click.echo(f"stopped {vb.name}")


@cli.command()
@click.argument("which", required=False)
@click.option("--power-cycle", is_flag=True, help="Power off and on instead of a reset.")
def reset(which: str | None, power_cycle: bool) -> None:
    """Hard-reset a virtual board: boot.py and main.py run again."""
    for vb in _get(which):
        if power_cycle:
            vb.power_cycle()
        else:
            vb.reset()
        click.echo(f"reset {vb.name}")
