"""The raw-REPL client's soft reset against a scripted board: back at the raw prompt,
or (a board that ran main.py instead) an error as soon as that shows."""

from __future__ import annotations

import time

import pytest

from hil.flash.repl import RAW_PROMPT, TM_ASM, RawRepl, RawReplError


class ScriptedBoard:
    """A serial port whose board answers Ctrl-D with `answer`, then stays quiet.
    Reads wait a little when nothing is there, like a port with a read timeout."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.pending = bytearray()
        self.quiet_reads = 0
        self.port = "scripted"

    def write(self, data: bytes) -> int:
        if b"\x04" in data:
            self.pending += self.answer
        return len(data)

    @property
    def in_waiting(self) -> int:
        return len(self.pending)

    def read(self, n: int) -> bytes:
        if not self.pending:
            self.quiet_reads += 1
            assert self.quiet_reads < 300, "still waiting on a board that went elsewhere"
            time.sleep(0.01)
            return b""
        data = bytes(self.pending[:n])
        del self.pending[:n]
        return data


def test_soft_reset_returns_at_the_raw_prompt() -> None:
    board = ScriptedBoard(b"OK\r\nMPY: soft reboot\r\n" + RAW_PROMPT)
    repl = RawRepl(board)  # type: ignore[arg-type]
    repl.in_raw = True
    repl.soft_reset(timeout_s=30.0)
    assert repl.in_raw


@pytest.mark.parametrize(
    "after",
    [
        b"farside: escape window 200 ms (Ctrl-C for the REPL)\r\n",
        b"farside rover 1.0.2 on sim\n" + TM_ASM + b"\x00\xab" + b"U" * 40,
        b"MicroPython v1.24 on 2024-01-01; Raspberry Pi Pico\r\n>>> ",
    ],
    ids=["escape-window", "rover-tm", "friendly-prompt"],
)
def test_soft_reset_into_main_py_fails_at_once_and_leaves_the_raw_repl(after: bytes) -> None:
    board = ScriptedBoard(b"OK\r\nMPY: soft reboot\r\n" + after)
    repl = RawRepl(board)  # type: ignore[arg-type]
    repl.in_raw = True
    with pytest.raises(RawReplError, match="expected the raw prompt after the soft reboot"):
        repl.soft_reset(timeout_s=30.0)
    assert not repl.in_raw  # the next exchange enters the raw REPL again
