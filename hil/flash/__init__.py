"""Flashing the rover onto a board (real Pico or virtual) over the raw REPL.

from hil.flash import FlashOptions, flash
report = flash(FlashOptions(board="sim", port="/dev/pts/3"))
report.plan.paths("upload"); report.payload_bytes; report.boot.version
"""

from hil.flash.image import Image, build_image
from hil.flash.install import FlashOptions, FlashReport, Plan, flash, make_plan

__all__ = ["FlashOptions", "FlashReport", "Image", "Plan", "build_image", "flash", "make_plan"]
