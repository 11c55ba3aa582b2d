"""`farside firmware`: build a MicroPython image for a board with farside frozen in."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group(name="firmware")
def cli() -> None:
    """Firmware images: MicroPython with the rover frozen into flash."""


@cli.command()
@click.option(
    "--board", default="pico", show_default=True, help="pico (RP2040), pico2 (RP2350), or pico_w (needs the wireless submodules)."
)
@click.option(
    "--micropython-src",
    type=click.Path(path_type=Path),
    default=None,
    help="A MicroPython source tree with the rp2 submodules, or a .tgz of one "
    "(default: $FARSIDE_MICROPYTHON_SRC, then ../shared/rp2/ beside the project).",
)
@click.option(
    "--build-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where a tarball is unpacked and the port built; reused by the next build "
    "(default: ~/.cache/farside/micropython/<source>).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="UF2 file to write (default: ./build/farside-<board>-<version>.uf2).",
)
@click.option("-j", "--jobs", type=int, default=None, help="Parallel make jobs (default: CPU count).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def build(
    board: str,
    micropython_src: Path | None,
    build_dir: Path | None,
    out: Path | None,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Build MicroPython's rp2 port with firmware_py and boards frozen in, and write a UF2
    (needs make, cmake and Debian's gcc-arm-none-eabi, libnewlib-arm-none-eabi and
    libstdc++-arm-none-eabi-newlib)."""
    from hil.firmware.build import BuildOptions, build_firmware, family_name

    options = BuildOptions(
        board=board, micropython_src=micropython_src, build_dir=build_dir, out=out, jobs=jobs
    )
    result = build_firmware(options, None if as_json else lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result.to_json()))
        return
    minutes, seconds = divmod(round(result.seconds), 60)
    click.echo(str(result.uf2))
    click.echo(
        f"  {result.size:,} octets ({result.size // 512} UF2 blocks), {family_name(result.family_id)}, "
        f"MicroPython {result.micropython_version} {result.mp_board}"
    )
    click.echo(
        f"  {len(result.frozen)} frozen modules, {len(result.farside_frozen)} of them farside's "
        f"(sources sha256 {result.frozen_hash[:12]}: farside flash installs no modules while they match)"
    )
    click.echo(f"  built in {minutes}m{seconds:02d}s; log: {result.log}")
