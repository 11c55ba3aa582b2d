"""`farside yamcs`: the dictionary as XTCE, a Yamcs configuration facing the relay, Yamcs
started as its own process, and a mission flown through it."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from hil.errors import FarsideError
from hil.yamcs.config import (
    DEFAULT_HTTP_PORT,
    DEFAULT_INSTANCE,
    DEFAULT_TC_PORT,
    DEFAULT_TM_PORT,
    EventDecoding,
    YamcsSetup,
    sdls_key_from_setting,
    write_config,
)
from hil.yamcs.extension import STOCK_VERIFIER, VERIFIER_CLASS


def _mdb() -> Any:
    try:
        from hil.yamcs import mdb
    except ImportError as exc:
        raise FarsideError(f"the XTCE writer needs {exc.name}: pip install 'farside[yamcs]'") from None
    return mdb


def mdb_xml(verifier: str = VERIFIER_CLASS) -> str:
    """The XTCE mission database from protocols/dictionary.json (hil.yamcs.mdb), its PUS-1
    verifiers run by `verifier` (farside's, from the extension its Yamcs folders compile)."""
    return str(_mdb().build_mdb(verifier=verifier))


def event_decoding() -> EventDecoding:
    """The event-id parameter and message templates for Yamcs's PUS event decoder."""
    mdb = _mdb()
    return EventDecoding(mdb.event_id_parameter(), mdb.event_templates())


@click.group(name="yamcs")
def cli() -> None:
    """Yamcs, the open-source mission control system, as farside's ground station."""


@cli.command("export-mdb")
@click.option("--out", "out", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="Write the XTCE here ('-': stdout).")
@click.option("--report", is_flag=True, help="List what XTCE carries only in part, and why, instead.")
def export_mdb(out: str, report: bool) -> None:
    """Write the dictionary as an XTCE mission database."""
    if report:
        for line in _mdb().mdb_report():
            click.echo(line)
        return
    xml = mdb_xml(STOCK_VERIFIER)  # for any Yamcs: no farside class on its class path
    if out == "-":
        click.echo(xml, nl=not xml.endswith("\n"))
        return
    Path(out).write_text(xml)
    click.echo(f"wrote {out}")


def _setup(http_port: int, tm_port: int, tc_port: int, instance: str, keys: str | None, spi: int,
           arsn: int, clear: bool) -> tuple[YamcsSetup, str]:
    for name, port in (("--http-port", http_port), ("--tm-port", tm_port), ("--tc-port", tc_port)):
        if not 1 <= port <= 65535:
            raise FarsideError(f"{name}: expected a port 1..65535, got {port}")
    if not 1 <= arsn < 1 << 32:
        raise FarsideError(f"--arsn: expected 1..4294967295, got {arsn}")
    key, why = (None, "--clear") if clear else sdls_key_from_setting(keys, spi)
    setup = YamcsSetup.from_dictionary(instance=instance, http_port=http_port, tm_port=tm_port, tc_port=tc_port,
                                       sdls_key=key, sdls_spi=spi, sdls_initial_seq=arsn)
    return setup, why


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--http-port", default=DEFAULT_HTTP_PORT, show_default=True, help="Web UI and API port.")
@click.option("--tm-port", default=DEFAULT_TM_PORT, show_default=True, help="UDP port Yamcs receives TM frames on.")
@click.option("--tc-port", default=DEFAULT_TC_PORT, show_default=True, help="UDP port Yamcs sends TC frames to (the relay's).")
@click.option("--instance", default=DEFAULT_INSTANCE, show_default=True, help="Yamcs instance name.")
@click.option("--keys", default=None, help="Key file or board (default: $FARSIDE_KEYS, else the development keys).")
@click.option("--spi", default=1, show_default=True, help="The security association Yamcs uses.")
@click.option("--arsn", default=1, show_default=True,
              help="First anti-replay sequence number Yamcs sends: above the rover's mark (HK sa_arsn).")
@click.option("--clear", is_flag=True, help="No SDLS: clear-mode TC frames (only a rover without security takes them).")
def init(folder: str, http_port: int, tm_port: int, tc_port: int, instance: str, keys: str | None, spi: int,
         arsn: int, clear: bool) -> None:
    """Write a Yamcs configuration in FOLDER: one instance, the farside MDB, frame links
    facing `farside relay --ground udp:TM_PORT:TC_PORT`, COP-1 and SDLS."""
    setup, why = _setup(http_port, tm_port, tc_port, instance, keys, spi, arsn, clear)
    write_config(folder, setup, mdb_xml(), event_decoding())
    click.echo(f"wrote {folder}: instance {instance}, web UI on port {http_port}")
    click.echo(f"TC security: {setup.security} ({why})")
    click.echo(f"relay: farside relay --ground udp:{tm_port}:{tc_port} --rover PORT")
    click.echo(f"start: farside yamcs start {folder}")


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False), default="yamcs", required=False)
@click.option("--timeout", "timeout_s", default=90.0, show_default=True, help="Seconds to wait for Yamcs to come up.")
def start(folder: str, timeout_s: float) -> None:
    """Start Yamcs on FOLDER (default ./yamcs, written by `farside yamcs init`) and run it
    until Ctrl-C. Prints the web UI's address once the instance runs."""
    from hil.yamcs.server import YamcsServer

    server = YamcsServer(folder)
    server.start()
    stop = False

    def _term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    old = signal.signal(signal.SIGTERM, _term)
    try:
        took = server.wait_ready(timeout_s)
        s = server.summary
        click.echo(f"Yamcs up in {took:.1f} s: {server.url} (instance {server.instance}); "
                   f"relay ground udp:{s['tm_port']}:{s['tc_port']}; TC security: {s['security']}")
        sys.stdout.flush()
        while not stop and server.proc is not None and server.proc.poll() is None:
            time.sleep(0.5)
        if server.proc is not None and server.proc.poll() not in (None, 0) and not stop:
            raise FarsideError(f"Yamcs exited with code {server.proc.returncode} (log: {server.log_path})")
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, old)
        server.stop()


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False), default="yamcs", required=False)
@click.option("--profile", default="lab", show_default=True, help="Relay profile: lab, queqiao, harsh or a file.")
@click.option("--seed", default=0, show_default=True, help="Relay seed (errors, loss, duplication).")
@click.option("--port", "rover_port", default=None, help="A rover already running on this port (default: a fresh virtual board).")
@click.option("--board", default="sim", show_default=True, help="The virtual board to start.")
@click.option("--heapsize", default=None, help="The virtual board's heap, e.g. 256K (default: the board's budget).")
@click.option("--keys", default=None,
              help="Key file or board the rover is flashed with, and a folder `init` has not written yet gets "
                   "(default: $FARSIDE_KEYS, else the dev keys; with --emulated, else fresh keys).")
@click.option("--emulated", is_flag=True, help="The rover on an emulated Pico (--board pico unless given).")
@click.option("--distance", "distance_m", default=3.0, show_default=True, help="Metres each drive goes.")
def fly(folder: str, profile: str, seed: int, rover_port: str | None, board: str, heapsize: str | None,
        keys: str | None, emulated: bool, distance_m: float) -> None:
    """Fly a short mission from Yamcs: the rover on a virtual board (or --port, or with
    --emulated an emulated Pico flashed with its own keys, which Yamcs is given),
    `farside relay` in front of it, Yamcs on FOLDER (written first if `init` has not),
    yamcs-client as the operator: PING, DRIVE_DISTANCE, TURN, a wheel jam and its WHEEL_FAULT."""
    from rich.console import Console
    from rich.table import Table

    from hil.yamcs.config import SETUP_FILE
    from hil.yamcs.fly import Flight, Station, fly_mission

    if emulated and rover_port is not None:
        raise FarsideError("--emulated starts its own Pico: give --port or --emulated, not both")
    if not distance_m > 0:
        raise FarsideError(f"--distance: expected metres above 0, got {distance_m:g}")
    if not (Path(folder) / SETUP_FILE).exists():
        from hil.gs.keys import DEV_KEYS

        # an emulated Pico's own key takes the place of this one once the station has made it
        setup, why = _setup(DEFAULT_HTTP_PORT, DEFAULT_TM_PORT, DEFAULT_TC_PORT, DEFAULT_INSTANCE,
                            str(DEV_KEYS) if emulated else keys, 1, 1, False)
        write_config(folder, setup, mdb_xml(), event_decoding())
        click.echo(f"wrote {folder}: TC security {setup.security} ({'the Pico keys' if emulated else why})", err=True)
    console = Console()
    with Station(Path(folder), rover_port=rover_port, profile=profile, seed=seed, board=board,
                 heapsize=heapsize, emulated=emulated, keys=keys) as st:
        where = f"an emulated Pico ({st.rover_port}, keys {st.key_file})" if emulated else st.rover_port
        console.print(f"Yamcs up in {st.yamcs_start_s:.1f} s at http://{st.url}; rover on {where}; relay {profile}")
        flight = Flight(st.url, st.instance)
        try:
            steps = fly_mission(flight, distance_m=distance_m, board=st.vboard if emulated else None)
        finally:
            flight.close()
    table = Table(title="mission flown from Yamcs")
    for col in ("step", "", "what Yamcs showed"):
        table.add_column(col)
    for s in steps:
        table.add_row(s.name, "ok" if s.ok else "FAILED", s.detail)
    console.print(table)
    failed = [s.name for s in steps if not s.ok]
    if failed:
        raise FarsideError(f"the mission from Yamcs failed at: {', '.join(failed)}", exit_code=1)
