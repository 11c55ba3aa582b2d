"""Firmware images: MicroPython's rp2 port built with farside frozen in, and UF2 files.

from hil.firmware import BuildOptions, build_firmware
result = build_firmware(BuildOptions(board="pico"))
result.uf2, result.size, result.farside_frozen
"""

from hil.firmware.build import BuildError, BuildOptions, BuildResult, build_firmware
from hil.firmware.uf2 import Uf2Error, bin_to_uf2, parse_uf2, uf2_image

__all__ = [
    "BuildError",
    "BuildOptions",
    "BuildResult",
    "Uf2Error",
    "bin_to_uf2",
    "build_firmware",
    "parse_uf2",
    "uf2_image",
]
