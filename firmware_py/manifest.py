# Freezing farside into a MicroPython image (micropython-lib style manifest).
#
# Frozen modules run their bytecode and constants from the firmware's flash instead
# of the heap: loaded as .mpy files, the rover's bytecode takes about 90 KB of the
# heap on the 64-bit unix port (less on a Pico's 32-bit objects); frozen, only the
# module objects (globals, functions, classes) are left on the heap. To build your
# own image, write a board manifest that keeps the port's modules (asyncio and the
# rest) and adds farside:
#
#   include("$(PORT_DIR)/boards/manifest.py")
#   include("/path/to/farside/firmware_py/manifest.py")
#
# and from a MicroPython checkout:
#
#   cd ports/rp2 && make BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/that/manifest.py
#
# This file is read by MicroPython's build, never imported by the rover (the flash
# image leaves it out). Its files list must name every module of the firmware
# (tests/firmware_codec check it).
#
# Import order: a firmware_py/ folder on sys.path ahead of ".frozen" shadows the
# frozen copy (even an empty one: MicroPython takes a folder for a package): boot.py
# puts the firmware slot first, and "" (the working directory) comes before ".frozen"
# too. `farside firmware build` also freezes a record of these sources' digest
# (firmware_py/_frozen.py, generated); `farside flash` compares it with the sources it
# would install: the same, and the slot holds no firmware_py/ or boards/, so the frozen
# modules run; different, and it installs the compiled modules, which shadow them.
#
# Line numbers are kept (tracebacks name the line); they cost flash, not RAM, when
# frozen.

metadata(description="farside lunar rover flight software", version="0.1.0")  # noqa: F821

# The rover firmware package (this folder) and the board-definition loader it imports.
# hal/rp2.py imports machine and rp2, present in every rp2 image; hal/sim.py,
# hal/plant.py and hal/terrain.py are the simulator (small; kept for the virtual board).
package(  # noqa: F821
    "firmware_py",
    files=(
        "__init__.py",
        "aio.py",
        "app.py",
        "compat.py",
        "crc16.py",
        "dictionary.py",
        "dispatcher.py",
        "drive.py",
        "events.py",
        "farm.py",
        "gcm.py",
        "hal/__init__.py",
        "hal/plant.py",
        "hal/rp2.py",
        "hal/sim.py",
        "hal/stdio.py",
        "hal/terrain.py",
        "link.py",
        "main.py",
        "modes.py",
        "nav.py",
        "otar.py",
        "params.py",
        "pktjournal.py",
        "pktstore.py",
        "power.py",
        "safety.py",
        "sastore.py",
        "sdls.py",
        "sdls_frame.py",
        "sequencer.py",
        "spacepacket.py",
        "tc_frame.py",
        "telemetry.py",
        "tm_frame.py",
        "version.py",
        "watchdog.py",
    ),
    base_path="..",
)
package("boards", files=("__init__.py",), base_path="..")  # noqa: F821
