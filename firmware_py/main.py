# Board entry: read the board definition, pick the HAL, run the rover.
#
# On a board (Pico or the unix-port virtual board) the root folder holds:
#   main.py           two lines: from firmware_py.main import main; main()
#   board.json        the board definition (a copy of boards/<name>.json); without
#                     it boards/sim.json (or the name in board.txt) is loaded
#   dictionary.json   the dictionary in canonical form (its hash is reported)
#   keys.json         the link's security associations (firmware_py/sdls.py):
#                     {"sas": {"1": {"suite": "aes-gcm", "key": "<64 hex>", "key_id": 1}},
#                     "master": "<64 hex>", "tm_spi": 0}; the old {"keys": {"1": "<hex>"}}
#                     still loads (legacy hmac-sha256 SAs)
#   firmware_py/ and boards/ (the code)
# and the rover writes params.json, boot.json, ttq.json, time.json, reset_intent, and
# sdls_state.json / sdls_keys.json (anti-replay marks, keys loaded over the link).
#
# The link is the board's stdin/stdout carrying binary frames (USB CDC on a
# Pico, the pty on the virtual board): TC frames after EB 90 in, TM frames
# after 1A CF FC 1D out. A one-line banner "farside rover <version> on <board>"
# goes to stderr first (the same USB CDC stream on a Pico; the ground's
# deframer skips it).
# A board whose link has its own interface (boards: link kind "uart": UART0 on a
# Pico, the virtual board's second pty) keeps the REPL on the console: the banner
# and errors go there, the rover runs in the background (app.start_background) and
# main() returns at once; Ctrl-C stays on (no escape window needed).
#
# For the flash engineer, two ways back to the REPL:
#   1. Boot-time escape window: the board's main.py (hil/flash/bootfiles.py) reads the
#      console for 200 ms after boot with Ctrl-C off, before importing the firmware. An
#      operator's Ctrl-C (0x03 as the first octet but CR and LF) leaves it at the REPL;
#      any other first octet is the ground's link and is handed to main(pending=...), so
#      0x03 octets inside frames stay data, then and after (Ctrl-C stays off while the
#      rover runs: micropython.kbd_intr(-1)).
#   2. The ENTER_REPL command (200/10): the rover completes the command, flushes TM,
#      restores Ctrl-C (kbd_intr(3)) and main() returns to the REPL. On rp2 the started
#      machine.WDT cannot be stopped, so the rover instead writes the flag file
#      `enter_repl` and resets; at that boot main() removes the flag and returns to the
#      REPL at once (no watchdog, no flight software).
# mpremote/`farside flash` therefore: reset the board (or start the port), send Ctrl-C
# repeatedly during main.py's window, then use the raw REPL as usual.
#
# The unix-port virtual board takes path 1 by default. With FARSIDE_REPL_BY_RESET=1 in
# its environment it takes rp2's path instead: main() writes the same two flag files
# and resets the board through its supervisor (FARSIDE_BOARD_CONTROL, the control
# socket the supervisor names), as machine.reset() would (_reset_to_repl).
#
# A watchdog reset of the sim (unix port, CPython) restarts the rover in-process
# keeping the root folder (app.boot_loop); on rp2 machine.reset() resets the chip.
#
# CPython / unix port command line:
#   python -m firmware_py.main [--board NAME|PATH] [--root DIR] [--seed N]
#   micropython -X heapsize=192K -m firmware_py.main ...   (same options)
import sys

from firmware_py.compat import MICROPYTHON
from firmware_py.params import join
from firmware_py.version import MAJOR, MINOR, PATCH


def load_board(root="", name=None):
    import json

    import boards

    if name:
        return boards.load(name)
    try:
        with open(join(root, "board.json")) as f:
            b = json.load(f)
        boards.validate(b)
        return b
    except OSError:
        pass
    try:
        with open(join(root, "board.txt")) as f:
            return boards.load(f.read().strip())
    except OSError:
        return boards.load("sim")


def make_hal(board, link=None, seed=1):
    if board.get("hal") == "rp2":
        from firmware_py.hal.rp2 import Rp2Hal

        return Rp2Hal(board, link)
    from firmware_py.hal.sim import SimHal

    if link is None:
        from firmware_py.hal.stdio import open_link

        link = open_link(board)
    return SimHal(board, link, seed)


def _kbd_intr(c):
    if MICROPYTHON:
        import micropython

        micropython.kbd_intr(c)


def main(root="", board=None, link=None, seed=1, background=None, pending=b""):
    # Returns only on ENTER_REPL; at once when the rover runs in the background (default
    # on MicroPython when the board's link has its own interface: the REPL stays free,
    # see app.start_background). pending: link octets main.py's escape window read from
    # the console (they go first to a link on the console).
    import gc

    from firmware_py.dictionary import Dictionary

    import os

    try:
        os.remove(join(root, "enter_repl"))
        sys.stderr.write("farside: REPL (ENTER_REPL)\n")
        return None
    except OSError:
        pass
    if board is None or isinstance(board, str):
        board = load_board(root, board)
    # the dictionary first, while the heap is still in one piece
    gc.collect()
    dictionary = Dictionary(join(root, "dictionary.json"))
    gc.collect()
    from firmware_py.app import boot_loop

    hal = make_hal(board, link, seed)
    sys.stderr.write("farside rover %d.%d.%d on %s\n" % (MAJOR, MINOR, PATCH, board.get("name")))
    import boards

    own = boards.own_link(board)
    if pending and not own:
        hal.link.pending = pending
    if background is None:
        background = MICROPYTHON and link is None and own
    if background:
        from firmware_py.app import start_background

        start_background(board, hal, root or os.getcwd(), hal.link, dictionary)
        return None
    _kbd_intr(-1)
    try:
        rover = boot_loop(board, hal, root, hal.link, dictionary)
        _reset_to_repl(root)  # a virtual board told to act as rp2: does not return
        return rover
    finally:
        _kbd_intr(3)


def _getenv(name):
    import os

    get = getattr(os, "getenv", None)  # not on rp2
    return get(name) if get else None


def _reset_to_repl(root):
    # The virtual board's rp2 way to the REPL (see the top of this file): the flag
    # files Rover._finish_exit writes on rp2, then a board reset asked of the
    # supervisor on its control socket. Returns (nothing written) when not asked
    # to, or when the socket cannot be reached.
    ctl = _getenv("FARSIDE_BOARD_CONTROL")
    if _getenv("FARSIDE_REPL_BY_RESET") != "1" or not ctl:
        return
    import socket

    from firmware_py.params import write_atomic

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if MICROPYTHON:
            import struct

            s.connect(struct.pack("H", socket.AF_UNIX) + ctl.encode() + b"\0")
        else:
            s.connect(ctl)
    except OSError:
        s.close()
        return
    write_atomic(join(root, "enter_repl"), "1")
    write_atomic(join(root, "reset_intent"), "1")
    s.send(b'{"op": "reset"}\n')
    s.recv(256)  # the supervisor ends this process before it answers
    s.close()


def _cli(argv):
    opts = {"--board": None, "--root": "", "--seed": "1"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a not in opts or i + 1 >= len(argv):
            sys.stderr.write(
                "usage: firmware_py.main [--board NAME|PATH] [--root DIR] [--seed N]\n"
            )
            sys.exit(2)
        opts[a] = argv[i + 1]
        i += 2
    main(opts["--root"], opts["--board"], None, int(opts["--seed"]), False)


if __name__ == "__main__":
    _cli(sys.argv[1:])
