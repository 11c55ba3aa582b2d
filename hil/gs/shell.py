"""`farside gs shell`: interactive commanding with tab completion (readline).

    gs> send DRIVE_DISTANCE distance_m=1 speed_mph=5km/h
    gs> tm battery_pct
    gs> events
    gs> watch
Tab completes verbs, command names, `arg=` names and enum values.
"""

from __future__ import annotations

import cmd
import shlex

from hil.errors import FarsideError
from hil.gs.mission import Mission
from hil.gs.session import Session
from hil.gs.units import units_of


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


class GsShell(cmd.Cmd):
    intro = "farside ground station shell: send CMD ARG=VALUE, tm NAME, events, watch, quit (Tab completes)"
    prompt = "gs> "

    def __init__(self, session: Session, timeout: float = 30.0) -> None:
        super().__init__()
        self.session = session
        self.timeout = timeout

    def do_send(self, line: str) -> None:
        """send CMD ARG=VALUE ...: send and wait for completion."""
        try:
            words = shlex.split(line)
            if not words:
                raise FarsideError("send: give a command")
            m = self.session.mission
            values = m.parse_args(words[0], words[1:])
            track = self.session.send_command(words[0], values)
            reps = self.session.wait_verification(track, self.timeout)
            print(f"{track.describe()}: " + ", ".join(r.stage for r in reps))
        except FarsideError as exc:
            print(f"error: {exc}")

    def complete_send(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        words = shlex.split(line[:begidx])[1:]
        return complete_words(self.session.mission, words, text)

    def do_tm(self, line: str) -> None:
        """tm NAME: latest value of a telemetry parameter."""
        name = line.strip()
        print(f"{name} = {self.session.state.value(name)}")

    def complete_tm(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        return [n for n in self.session.mission.hk_parameters if n.startswith(text)]

    def do_events(self, line: str) -> None:
        """events: the latest events."""
        for e in list(self.session.state.events)[-15:]:
            print(f"{e.name:18} {e.message}")

    def do_watch(self, line: str) -> None:
        """watch: print the watch screen once."""
        from hil.gs.watch import render_to_string

        print(render_to_string(self.session.state))

    def do_quit(self, line: str) -> bool:
        """quit: leave the shell."""
        return True

    do_EOF = do_quit
