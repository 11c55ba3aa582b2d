"""The ground station: what `farside gs` and the HIL tests use to talk to the rover.

    link.py       the ground's end of the link, clock-free: TM deframe/decode/archive, commands
                  encoded by the dictionary, COP-1 (FOP-1), SDLS, TC archive
    session.py    a live link driving it: I/O thread, verification waits, reconnect with backoff
    state.py      what the ground knows (HK, events, reports, link), fed frames and packets
    api.py        F Prime style send_/await_/assert_ front door (shared with hil.mission), predicates
    archive.py    crash-safe, append-only session archive (length + CRC-32 records, rotation)
    export.py     archive -> tables, vectorised with numpy; CSV, JSON lines, Parquet
    replay.py     archive -> ground state, at any pace
    watch.py      the live screen (rich), a pure function of the state
    plot.py       parameters over time and the traverse map (matplotlib Agg)
    procedure.py  plain and Python procedures
    mission.py    the dictionary, indexed for typed, unit-aware arguments and limits
    units.py      unit parsing and conversion;  commanding.py  release times for --at
    dictview.py   `farside gs dict`;  shell.py  interactive shell with completion
    synth.py      telemetry made with the rover's own codec (tests, benchmarks)
"""
