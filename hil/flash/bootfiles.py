"""The two files `farside flash` keeps at the root of the board's filesystem.

Board layout (paths relative to the filesystem root; `/` on a Pico, the flash folder
on a virtual board):

    boot.py                   picks the firmware slot (below) and puts it on sys.path
    main.py                   escape window, then runs the rover from that slot
    farside/active            pointer file: "a" or "b" (replaced by rename: atomic)
    farside/a/, farside/b/    slots: firmware_py/*.mpy, board.json, dictionary.json,
                              keys.json, and MANIFEST (written last, by rename); on a
                              firmware with these very modules frozen in, no
                              firmware_py/ or boards/ (they would shadow the frozen ones)

A slot is complete when its MANIFEST parses and every file it lists has the listed
size. boot.py takes the slot the pointer names if it is complete, else the other one
if complete, else none (the board stays at the REPL). The flash tool only ever writes
into the slot boot.py does not take, and switches the pointer last, so a flash cut at
any point leaves a board that boots the old firmware or the new one.

While the rover runs, the working directory is its slot: the rover opens
`board.json`, `dictionary.json`, `keys.json` by relative name, and writes its own state
there (ROVER_STATE_FILES below). That state is not firmware: the flash tool never hashes
it and never carries it into a new slot (a new slot holds the image and nothing else; its
rover starts from a first boot), and deletes what an older run left in the staging slot.

`enter_repl` is the flag of rp2's way to the REPL (firmware_py/main.py): ENTER_REPL writes
it and resets the board. main.py removes it before anything else and stays at the REPL,
before its escape window (a Ctrl-C landing in that window must not leave the flag for the
next boot); the flash tool also deletes a leftover flag once it has the raw REPL.
"""

from __future__ import annotations

# Both files must stay valid on every MicroPython since 1.20 and on CPython (tests).
BOOT_PY = """\
# farside boot: choose the complete firmware slot and put it on sys.path.
# Written by `farside flash`; see hil/flash/bootfiles.py for the layout.
import micropython

# Ctrl-C off from the first line: an octet 0x03 arriving now, an operator's or inside a
# ground frame, waits in the console's buffer for main.py's escape window to judge.
micropython.kbd_intr(-1)
import os
import sys

FARSIDE_ROOT = os.getcwd()
FARSIDE_SLOT = None


def _farside_complete(slot):
    import json

    try:
        with open(slot + "/MANIFEST") as f:
            files = json.load(f)["files"]
        for name in files:
            if os.stat(slot + "/" + name)[6] != files[name][0]:
                return False
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False
    return True


def _farside_pick():
    base = ("" if FARSIDE_ROOT == "/" else FARSIDE_ROOT) + "/farside/"
    try:
        with open(base + "active") as f:
            want = f.read().strip()
    except OSError:
        want = "a"
    if want not in ("a", "b"):
        want = "a"
    for s in (want, "b" if want == "a" else "a"):
        if _farside_complete(base + s):
            return base + s
    return None


FARSIDE_SLOT = _farside_pick()
if FARSIDE_SLOT is not None and FARSIDE_SLOT not in sys.path:
    sys.path.insert(0, FARSIDE_SLOT)
del _farside_pick, _farside_complete
"""

# The escape window: the first 200 ms of main.py, before the firmware is even imported.
# Ctrl-C stays off (0x03 is data on the link, which shares the console on a USB CDC board);
# the window reads the console itself and takes an operator's Ctrl-C, 0x03 as the first
# octet but CR and LF (as `farside flash` and mpremote send it), for the REPL. Any other
# octet first is the ground's link: a frame (a COP-1 retransmission after a power cut,
# say) whose MAC happens to hold 0x03 must not keep the rover at the REPL. That octet goes
# on to the rover's link (main(pending=...)), so the frame arrives whole. The flash tool
# resets the board and sends Ctrl-C until it sees the REPL.
#
# In the board's text, _farside_window returns None for an operator's Ctrl-C, else the link's
# first octet (b"" if none came in the window); _farside_repl_flag consumes the flag rp2's
# ENTER_REPL leaves before its reset. Comments stay out of that text: on the virtual board it
# is compiled on the heap the rover then runs in.
ESCAPE_MS = 200

MAIN_PY = """\
# farside main: a short escape window (Ctrl-C: stop at the REPL), then the rover.
# Written by `farside flash`; see hil/flash/bootfiles.py.
import micropython

micropython.kbd_intr(-1)
import os
import select
import sys
import time

try:
    _slot = FARSIDE_SLOT
except NameError:
    _slot = None


def _farside_repl_flag(slot):
    try:
        os.remove(slot + "/enter_repl")
    except OSError:
        return False
    return True


def _farside_window(ms):
    inb = getattr(sys.stdin, "buffer", sys.stdin)
    poll = select.poll()
    poll.register(sys.stdin, select.POLLIN)
    one = bytearray(1)
    end = time.ticks_add(time.ticks_ms(), ms)
    while True:
        left = time.ticks_diff(end, time.ticks_ms())
        if left <= 0 or not poll.poll(left) or not inb.readinto(one):
            return b""
        if one[0] == 3:
            return None
        if one[0] not in (10, 13):
            return bytes(one)


def _farside_main(slot):
    if _farside_repl_flag(slot):
        print("farside: REPL (ENTER_REPL)")
        return
    print("farside: escape window %d ms (Ctrl-C for the REPL)" % ESCAPE_MS)
    first = _farside_window(ESCAPE_MS)
    if first is None:
        print("farside: stopped at the REPL")
        micropython.kbd_intr(3)
        return
    root = os.getcwd()
    os.chdir(slot)
    try:
        from firmware_py.main import main

        main(pending=first)
    except KeyboardInterrupt:
        print("farside: rover stopped, at the REPL")
    finally:
        os.chdir(root)


if _slot is None:
    micropython.kbd_intr(3)
    print("farside: no complete firmware slot; at the REPL (run `farside flash`)")
else:
    _farside_main(_slot)
del _slot, _farside_main, _farside_repl_flag, _farside_window
""".replace("% ESCAPE_MS", f"% {ESCAPE_MS}").replace("(ESCAPE_MS)", f"({ESCAPE_MS})")

# What the rover writes at run time in its working directory, the slot (firmware_py/app.py,
# params.py, sequencer.py, main.py), each also as `<name>.new` (written, then renamed).
ROVER_STATE_FILES = (
    "enter_repl",
    "reset_intent",
    "boot.json",
    "params.json",
    "ttq.json",
    "time.json",
)


def is_rover_state(path: str) -> bool:
    """True for a slot-relative path the rover writes at run time (never firmware)."""
    name = path[:-4] if path.endswith(".new") else path
    return name in ROVER_STATE_FILES


ROOT_FILES: dict[str, bytes] = {"boot.py": BOOT_PY.encode(), "main.py": MAIN_PY.encode()}
