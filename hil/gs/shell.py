"""`farside gs shell`: interactive commanding with tab completion (readline).

    gs> send DRIVE_DISTANCE distance_m=1 speed_mph=5km/h
    gs> tm battery_pct x_m          # latest values, with their units
    gs> tm                          # every housekeeping parameter
    gs> events
    gs> watch
    gs> history                     # the lines typed so far (kept across sessions)

Tab completes verbs, command names, `arg=` names and enum values. Ctrl-C cancels the line
being typed (or stops waiting for a command, which may still run on the rover); Ctrl-D or
`quit` leaves. A mistyped name is an error on one line with the nearest names, never a
silent `None`.
"""

from __future__ import annotations

import cmd
import difflib
import os
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hil.errors import FarsideError
from hil.gs.mission import Mission
from hil.gs.session import Session
from hil.gs.units import units_of
from hil.gs.watch import event_message, shown_quantity

HISTORY_LINES = 1000
HISTORY_FILE = "gs_shell_history"


def complete_words(mission: Mission, words: list[str], text: str) -> list[str]:
    """Completions for the word being typed (`text`) after `words` (the send line so far)."""
    if not words:
        return [c for c in mission.commands_by_name if c.startswith(text.upper())]
    cmd_ = mission.commands_by_name.get(words[0].upper())
    if cmd_ is None:
        return []
    if "=" in text:
        key, val = text.split("=", 1)
        spec = next((a for a in cmd_.args if a.name == key), None)
        if spec is None:
            return []
        if spec.enum is not None:
            return [f"{key}={v}" for v in mission.enum(spec.enum).values() if v.startswith(val.upper())]
        num = val.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ/%")
        return [f"{key}={num}{u}" for u in units_of(spec.unit) if f"{num}{u}".startswith(val)] if num else []
    given = {w.split("=", 1)[0] for w in words[1:]}
    return [f"{a.name}=" for a in cmd_.args if a.name not in given and a.name.startswith(text)]


def did_you_mean(word: str, names: Iterable[str]) -> str:
    """`; did you mean x_m, y_m?` for the nearest names, or "" when none is near."""
    near = difflib.get_close_matches(word, list(names), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(near)}?" if near else ""


def history_path() -> Path:
    """Where the shell keeps its history: the ground's state dir ($FARSIDE_STATE_DIR)."""
    from hil.gs.arsn import state_dir

    return state_dir() / HISTORY_FILE


class GsShell(cmd.Cmd):
    intro = (
        "farside ground station shell: send CMD ARG=VALUE, tm [NAME...], events, watch, history, quit\n"
        "Tab completes; Ctrl-C cancels the line, Ctrl-D or quit leaves"
    )
    prompt = "gs> "
    VERBS = ("send", "tm", "events", "watch", "history", "help", "quit", "exit")

    def __init__(self, session: Session, timeout: float = 30.0, history_file: Path | None = None) -> None:
        """`history_file`: where `history` is kept across sessions (default: history_path())."""
        super().__init__()
        self.session = session
        self.timeout = timeout
        self.history: list[str] = []
        self.history_file = history_file
        self._readline: Any = None

    # --- the loop: Ctrl-C cancels the line, not the shell ---------------------------------
    def cmdloop(self, intro: str | None = None) -> None:
        """Run until quit or Ctrl-D; Ctrl-C abandons the line being typed (or the wait for a
        command) and gives a fresh prompt."""
        if self.history_file is None:
            self.history_file = history_path()
        self._load_history()
        first = self.intro if intro is None else intro
        try:
            while True:
                try:
                    super().cmdloop(first)
                    return
                except KeyboardInterrupt:
                    print("^C")
                    first = ""
        finally:
            self._save_history()

    def precmd(self, line: str) -> str:
        if line.strip() and line != "EOF":
            self.history.append(line)
        return line

    def emptyline(self) -> bool:
        return False  # an empty line does nothing (cmd's default repeats the last command: a second send)

    def default(self, line: str) -> None:
        verb = line.split(maxsplit=1)[0] if line.split() else line
        print(f"error: unknown verb {verb!r} (send, tm, events, watch, history, quit){did_you_mean(verb, self.VERBS)}")

    # --- commands ----------------------------------------------------------------------------
    def do_send(self, line: str) -> None:
        """send CMD ARG=VALUE ...: send and wait for completion (Ctrl-C stops waiting)."""
        try:
            words = shlex.split(line)
            if not words:
                raise FarsideError("send: give a command")
            m = self.session.mission
            if words[0].upper() not in m.commands_by_name:
                raise FarsideError(f"unknown command {words[0]!r}{did_you_mean(words[0].upper(), m.commands_by_name)}")
            values = m.parse_args(words[0], words[1:])
            track = self.session.send_command(words[0], values)
        except (FarsideError, ValueError) as exc:
            print(f"error: {exc}")
            return
        try:
            reps = self.session.wait_verification(track, self.timeout)
            print(f"{track.describe()}: " + ", ".join(r.stage for r in reps))
        except FarsideError as exc:
            print(f"error: {exc}")
        except KeyboardInterrupt:
            print(f"^C\nstopped waiting for {track.describe()}: it was sent and may still execute on the rover "
                  "(send STOP to stop a drive)")

    def complete_send(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        words = shlex.split(line[:begidx])[1:]
        return complete_words(self.session.mission, words, text)

    def tm_line(self, name: str) -> str:
        """`name = value unit  (N s ago)` for one housekeeping parameter, N the seconds since its
        latest report came (through an outage the values grow old in plain sight); FarsideError
        for an unknown name."""
        params = self.session.mission.hk_parameters
        p = params.get(name)
        if p is None:
            raise FarsideError(f"unknown telemetry {name!r}{did_you_mean(name, params)}")
        state = self.session.state
        v = state.value(name)
        if v is None:
            return f"{name}: no report yet"
        age = state.value_age(name)
        if name in ("dict_hash", "clcw") and isinstance(v, int):
            text = f"{name} = 0x{v:08x}"
        else:
            value, unit = shown_quantity(self.session.mission, v, p.unit) if isinstance(v, int | float) else (v, p.unit)
            shown = f"{value:.6g}" if isinstance(value, float) else str(value)
            text = f"{name} = {shown} {unit}".rstrip()
        return text if age is None else f"{text}  ({age:.1f} s ago)"

    def do_tm(self, line: str) -> None:
        """tm [NAME ...]: latest telemetry values, with units and report age (all without NAME)."""
        names = line.split() or list(self.session.mission.hk_parameters)
        for name in names:
            try:
                print(self.tm_line(name))
            except FarsideError as exc:
                print(f"error: {exc}")

    def complete_tm(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        return [n for n in self.session.mission.hk_parameters if n.startswith(text)]

    def do_events(self, line: str) -> None:
        """events: the latest events (quantities in metres and degrees)."""
        with self.session.state.cond:
            events = list(self.session.state.events)[-15:]
        for e in events:
            print(f"{e.name:18} {event_message(self.session.mission, e)}")

    def do_watch(self, line: str) -> None:
        """watch: print the watch screen once."""
        from hil.gs.watch import render_to_string

        size = os.get_terminal_size() if os.isatty(1) else os.terminal_size((140, 0))
        print(render_to_string(self.session.state, width=size.columns, height=size.lines or None))

    def do_history(self, line: str) -> None:
        """history [N]: the lines typed so far (the last N)."""
        arg = line.strip()
        if arg and not arg.isdigit():
            print(f"error: history takes a number of lines, got {arg!r}")
            return
        start = max(0, len(self.history) - int(arg)) if arg else 0
        for i, text in enumerate(self.history[start:], start + 1):
            print(f"{i:5}  {text}")

    def do_quit(self, line: str) -> bool:
        """quit: leave the shell (also exit, Ctrl-D)."""
        return True

    do_exit = do_quit

    def do_EOF(self, line: str) -> bool:
        print()
        return True

    # --- history kept across sessions ------------------------------------------------------
    def _load_history(self) -> None:
        try:
            import readline
        except ImportError:
            return
        self._readline = readline
        path = self.history_file
        if path is None or not path.exists():
            return
        try:
            readline.read_history_file(str(path))
            self.history = [readline.get_history_item(i) for i in range(1, readline.get_current_history_length() + 1)]
        except OSError:
            pass

    def _save_history(self) -> None:
        if self._readline is None or self.history_file is None:
            return
        try:
            self.history_file.parent.mkdir(parents=True, exist_ok=True)
            self._readline.set_history_length(HISTORY_LINES)
            self._readline.write_history_file(str(self.history_file))
        except OSError:
            pass
