"""`farside relay`: the Queqiao relay emulator between a ground-side and a rover-side port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from hil.errors import FarsideError
from hil.relay.capture import CaptureWriter
from hil.relay.channel import Relay
from hil.relay.endpoints import Endpoint, PtyEndpoint, open_endpoint
from hil.relay.profile import load_profile
from hil.relay.runner import RelayRunner


def _table(stats: dict[str, Any]) -> Any:
    from rich.table import Table

    t = Table(title=f"relay {stats['profile']}  t={stats['time_s']:.1f} s  "
              f"{'OUTAGE' if stats['outage'] else 'visible'}  seed {stats['seed']}")
    t.add_column("")
    t.add_column("uplink (ground->rover)", justify="right")
    t.add_column("downlink (rover->ground)", justify="right")
    up, down = stats["uplink"], stats["downlink"]
    for key in ("octets_in", "octets_out", "frames_in", "frames_out", "bits_flipped", "frames_corrupted",
                "frames_lost", "frames_duplicated", "queue_octets", "queue_units", "in_flight",
                "overflow_units", "overflow_octets"):
        t.add_row(key, str(up[key]), str(down[key]))
    for side in ("ground", "rover"):
        e = stats[side]
        t.add_row(side, e["endpoint"], f"{'up' if e['connected'] else 'DOWN'}, {e['reconnects']} reconnects, "
                  f"{e['pending_octets']} held")
    return t


def _write_stats(path: str, stats: dict[str, Any]) -> None:
    if path == "-":
        click.echo(json.dumps(stats, sort_keys=True))
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(stats, f, sort_keys=True, indent=1)
    os.replace(tmp, path)


async def _run(
    profile_name: str, ground_spec: str, rover_spec: str, seed: int, capture: str | None,
    stats_json: str | None, interval_s: float, duration_s: float | None, live: bool,
) -> dict[str, Any]:
    profile = load_profile(profile_name)
    ground: Endpoint = open_endpoint(ground_spec, profile.tm_frame_length)
    rover: Endpoint = open_endpoint(rover_spec, profile.tm_frame_length)
    writer = None
    if capture:
        writer = CaptureWriter(capture, {"profile": profile.name, "seed": seed, "clock": "monotonic",
                                         "start_unix": time.time(), "ground": ground_spec, "rover": rover_spec})
    relay = Relay(profile, seed=seed, capture=writer)
    runner = RelayRunner(relay, ground, rover)
    try:
        await runner.start()
    except BaseException:
        if writer:
            writer.close()
        raise
    for side, ep in (("ground", ground), ("rover", rover)):
        if isinstance(ep, PtyEndpoint):
            click.echo(f"{side}: {ep.path}")
        else:
            click.echo(f"{side}: {ep.describe()}")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    end = None if duration_s is None else loop.time() + duration_s
    live_ctx: Any = contextlib.nullcontext()
    if live:
        from rich.live import Live

        live_ctx = Live(_table(runner.stats()), refresh_per_second=4, transient=False)
    try:
        with live_ctx as view:
            while end is None or loop.time() < end:
                step = interval_s if end is None else max(0.0, min(interval_s, end - loop.time()))
                await asyncio.sleep(step)
                stats = runner.stats()
                if view is not None:
                    view.update(_table(stats))
                if stats_json:
                    _write_stats(stats_json, stats)
    finally:
        stats = runner.stats()
        await runner.stop()
    return stats


@click.command("relay")
@click.option("--profile", "profile_name", default="queqiao", show_default=True,
              help="queqiao, lab, harsh, or a profile JSON file")
@click.option("--ground", "ground_spec",
              help="ground side: pty, tcp-listen:PORT, tcp:HOST:PORT, udp:TM_PORT:TC_PORT (frames as datagrams), a pyserial URL or a port")
@click.option("--rover", "rover_spec", help="rover side: same forms as --ground")
@click.option("--seed", default=0, show_default=True, help="random seed (errors, loss, duplication)")
@click.option("--capture", type=click.Path(dir_okay=False), help="write every chunk in and out here")
@click.option("--stats-json", type=str, help="write statistics JSON here every interval ('-': a line on stdout)")
@click.option("--interval", "interval_s", default=1.0, show_default=True, help="statistics interval, s")
@click.option("--duration", "duration_s", type=float, help="stop after this many seconds")
@click.option("--quiet", is_flag=True, help="no live table")
@click.option("--print-profile", is_flag=True, help="print the profile's JSON (to copy and edit) and exit")
def cli(profile_name: str, ground_spec: str | None, rover_spec: str | None, seed: int, capture: str | None,
        stats_json: str | None, interval_s: float, duration_s: float | None, quiet: bool,
        print_profile: bool) -> None:
    """Emulate the Queqiao relay between a ground station and a rover.

    Per direction: delay, data rate, bit errors and bursts, frame loss and duplication,
    visibility windows with store-and-forward. Ctrl-C stops it and prints the statistics.
    """
    if print_profile:
        from hil.relay.profile import BUILTIN, builtin_profile_text

        if profile_name in BUILTIN:
            click.echo(builtin_profile_text(profile_name), nl=False)
        else:
            load_profile(profile_name)
            click.echo(Path(profile_name).read_text(), nl=False)
        return
    for opt, spec in (("--ground", ground_spec), ("--rover", rover_spec)):
        if not spec:
            raise FarsideError(f"{opt}: expected an endpoint (pty, tcp-listen:PORT, tcp:HOST:PORT, a pyserial URL or a port), got none")
    assert ground_spec is not None and rover_spec is not None
    if interval_s <= 0:
        raise FarsideError(f"--interval: expected a number > 0, got {interval_s}")
    live = not quiet and sys.stdout.isatty() and stats_json != "-"
    try:
        stats = asyncio.run(_run(profile_name, ground_spec, rover_spec, seed, capture, stats_json,
                                 interval_s, duration_s, live))
    except KeyboardInterrupt:
        return
    if stats_json and stats_json != "-":
        _write_stats(stats_json, stats)
    if not live:
        up, down = stats["uplink"], stats["downlink"]
        click.echo(f"uplink: {up['octets_in']} in, {up['octets_out']} out, {up['frames_out']} frames, "
                   f"{up['overflow_units']} overflowed; downlink: {down['octets_in']} in, "
                   f"{down['octets_out']} out, {down['frames_out']} frames, {down['overflow_units']} overflowed")
