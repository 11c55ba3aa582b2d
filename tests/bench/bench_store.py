"""Packet store and gap retrieval (figures, not pass/fail): `python -m tests.bench.bench_store`.

In virtual time (the whole loop: ground, relay, CPython rover), under the `harsh` profile and
a custom one (BER 1e-3 on the uplink, where COP-1 and TM_RETRIEVE go, 1e-5 on the downlink;
10 % frame loss and 5 % duplication both ways; a 120 s relay outage every 15 minutes: a
256-octet TM frame at BER 1e-3 would arrive intact one time in eight, with no code to save it),
a rover answering a PING every 20 s and reporting HK at 1 Hz for an hour:
1. the fraction of TM packets on the ground after gap retrieval: verification reports and
   events (the goal is all of them), and housekeeping (the store keeps one a minute); counted
   over what the rover sent during the run, after the ground had up to END_WAIT_S more to
   complete (the time it took is reported: `end_wait_s`);
2. the time from each outage's end until every verification report and event the rover sent
   before it is on the ground;
3. what retrieval costs: the store's frames against all downlink frames, and the TM_RETRIEVE
   frames' bits against the uplink's capacity over the run (its rate: the scarce direction);
4. what the store's journal writes to flash (firmware_py.pktjournal): octets and appends an hour.
With --missions N, also `farside mission --relay harsh` for seeds 1..N: how many pass with
every command resolved.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

from hil.mission.api import RoverApi
from hil.mission.loop import LoopConfig, WholeLoop
from tests.bench.report import add_json_option, write_json

END_WAIT_S = 900.0  # after the run, how long the ground may take to be complete (then what is missing counts)

CUSTOM = {
    "name": "bench-store",
    "description": "BER 1e-3 up, 10 % loss, 5 % duplication, a 120 s outage every 15 minutes",
    "uplink": {"delay_s": 1.75, "rate_bps": 125, "ber": 1e-3, "frame_loss": 0.10, "frame_duplication": 0.05,
               "buffer_octets": 16384},
    "downlink": {"delay_s": 1.75, "rate_bps": 285000, "ber": 1e-5, "frame_loss": 0.10, "frame_duplication": 0.05,
                 "buffer_octets": 4194304},
    "relay_passes": {"period_s": 900, "outages": [[600, 720]]},
    "tm_frame_length": 256,
}


def run(relay: str, seed: int, duration_s: float) -> dict[str, Any]:
    """One run: what the rover sent, what the ground holds, and when it was complete again."""
    w = WholeLoop(LoopConfig(seed=seed, relay=relay, archive=False))
    t_wall = time.perf_counter()
    try:
        rover = RoverApi(w)
        rover.await_mode("STANDBY", timeout=120)
        sent: dict[int, tuple[int, float]] = {}  # seq -> (service, loop s) of every packet sent
        order: list[tuple[int, int, float]] = []  # (seq, service, loop s) in send order
        store = w.rover.store
        put = store.put

        def spy(pkt: Any, service: int) -> None:
            q = struct.unpack(">H", bytes(pkt[2:4]))[0] & 0x3FFF
            sent[q] = (service, w.now())
            order.append((q, service, w.now()))
            put(pkt, service)

        store.put = spy
        st = w.ground.state
        got: set[int] = set()
        note = st.gaps.note

        def seen(apid: int, seq: int, packet: bytes, t: float, retrieved: bool = False) -> bool:
            new = note(apid, seq, packet, t, retrieved)
            if new:
                got.add(seq)
            return new

        st.gaps.note = seen  # type: ignore[method-assign]
        outage_ends: list[float] = []
        complete_after: list[float] = []
        t0 = w.now()
        was_out = False
        watch = 0  # the first report or event, in send order, not yet seen on the ground

        def reports_events() -> list[int]:
            return [q for q, (svc, _) in sent.items() if svc in (1, 5)]

        def all_on_ground_before(t_end: float) -> bool:
            """Every report and event the rover sent before `t_end` is on the ground."""
            nonlocal watch
            while watch < len(order) and (order[watch][1] not in (1, 5) or order[watch][0] in got):
                watch += 1
            return watch >= len(order) or order[watch][2] >= t_end

        while w.now() - t0 < duration_s:
            out = w.relay is not None and w.relay.outage(w.now())
            if was_out and not out:
                outage_ends.append(w.now())
            was_out = out
            if int(w.now() - t0) % 20 == 0:
                rover.send_command("PING")
            rover.wait(1.0)
            if len(complete_after) < len(outage_ends):
                if all_on_ground_before(outage_ends[len(complete_after)]):
                    complete_after.append(w.now() - outage_ends[len(complete_after)])
        t_end = w.now()
        want = [q for q in reports_events() if sent[q][1] < t_end]
        while any(q not in got for q in want) and w.now() - t_end < END_WAIT_S:
            rover.wait(1.0)  # the last gaps: the ground asks while HK keeps coming
        tail_s = w.now() - t_end
        down = w.relay_stats().get("downlink", {})
        up_bps = w.relay.profile.uplink.rate_bps if w.relay is not None else None
        frames_total = down.get("frames_in", 0)
        # TM_RETRIEVE goes Type-BD (bypass, not control): the only such frames the ground sends
        bd = [f for f in w.ground.sent_frames if f[0] & 0x30 == 0x20]
        c = st.gaps.counters
        j = w.rover.store.journal  # the packet store's journal on the sim board's flash (None: RAM only)
        hours = (w.now() - t0) / 3600
        kinds = {"reports_events": lambda s: s in (1, 5), "hk": lambda s: s == 3}
        frac = {}
        for k, pred in kinds.items():
            seqs = [q for q, (svc, t) in sent.items() if pred(svc) and t < t_end]
            frac[k] = sum(1 for q in seqs if q in got) / len(seqs) if seqs else 1.0
            frac[k + "_n"] = len(seqs)
        return {
            "reports_events_on_ground": frac["reports_events"],
            "reports_events_sent": frac["reports_events_n"],
            "hk_on_ground": frac["hk"],
            "hk_sent": frac["hk_n"],
            "outages": len(outage_ends),
            "complete_after_outage_s": complete_after,
            "store_frames": c.store_frames,
            "downlink_frames": frames_total,
            "retrieval_bandwidth_fraction": c.store_frames / frames_total if frames_total else 0.0,
            "retrieve_commands": c.requests,
            # the uplink's capacity over the run (its rate x the time) that TM_RETRIEVE frames took
            "retrieval_uplink_fraction": sum(len(f) + 2 for f in bd) * 8 / (up_bps * (w.now() - t0)) if up_bps else 0.0,
            "end_wait_s": tail_s,
            "journal_octets_per_hour": j.written / hours if j is not None else 0.0,
            "journal_records_per_hour": j.records / hours if j is not None else 0.0,
            "missing_seen": c.missing_seen,
            "filled": c.filled,
            "not_stored": c.not_stored,
            "attempts_spent": c.attempts_spent,
            "wall_s": time.perf_counter() - t_wall,
        }
    finally:
        w.close()


def missions(n: int) -> dict[str, Any]:
    """`farside mission --relay harsh` for seeds 1..n: which pass with every command resolved."""
    from hil.cli import main

    passed, failed = [], {}
    for seed in range(1, n + 1):
        out = Path(tempfile.mkdtemp(prefix="farside-bench-")) / "report"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc = main(["mission", "--relay", "harsh", "--seed", str(seed), "--out", str(out), "--no-plots", "--json"])
        s = json.loads((out / "summary.json").read_text())
        c = s["commands"]
        if rc == 0 and s["ok"] and c["verified"] + c["failed"] == c["sent"]:
            passed.append(seed)
        else:
            failed[seed] = s["error"][:200] or f"{c['verified']} + {c['failed']} of {c['sent']} resolved"
    return {"passed": len(passed), "of": n, "failed": failed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--missions", type=int, default=0, help="also run the harsh mission for seeds 1..N")
    add_json_option(ap)
    args = ap.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        custom = Path(tmp) / "bench-store.json"
        custom.write_text(json.dumps(CUSTOM))
        for name, relay in (("harsh", "harsh"), ("custom", str(custom))):
            runs = [run(relay, seed, args.minutes * 60.0) for seed in range(1, args.seeds + 1)]
            after = [x for r in runs for x in r["complete_after_outage_s"]]
            f = {
                "reports_events_on_ground_min": min(r["reports_events_on_ground"] for r in runs),
                "reports_events_sent": sum(r["reports_events_sent"] for r in runs),
                "hk_on_ground_mean": statistics.mean(r["hk_on_ground"] for r in runs),
                "complete_after_outage_s_median": statistics.median(after) if after else None,
                "complete_after_outage_s_max": max(after) if after else None,
                "outages": sum(r["outages"] for r in runs),
                "retrieval_bandwidth_fraction_mean": statistics.mean(r["retrieval_bandwidth_fraction"] for r in runs),
                "retrieve_commands_per_hour": statistics.mean(r["retrieve_commands"] for r in runs) * 60 / args.minutes,
                "retrieval_uplink_fraction_mean": statistics.mean(r["retrieval_uplink_fraction"] for r in runs),
                "end_wait_s_max": max(r["end_wait_s"] for r in runs),
                "journal_octets_per_hour": statistics.mean(r["journal_octets_per_hour"] for r in runs),
                "journal_records_per_hour": statistics.mean(r["journal_records_per_hour"] for r in runs),
                "attempts_spent": sum(r["attempts_spent"] for r in runs),
                "not_stored": sum(r["not_stored"] for r in runs),
                "wall_s": sum(r["wall_s"] for r in runs),
                "runs": runs,
            }
            figures[name] = f
            print(f"{name}: {args.seeds} seeds x {args.minutes:g} min")
            print(f"   verification reports and events on the ground: {f['reports_events_on_ground_min']:.4%} (worst "
                  f"seed; {f['reports_events_sent']} sent); housekeeping {f['hk_on_ground_mean']:.2%} (mean)")
            if after:
                print(f"   ground complete after an outage's end: median {f['complete_after_outage_s_median']:.1f} s, "
                      f"max {f['complete_after_outage_s_max']:.1f} s ({len(after)} of {f['outages']} outages)")
            print(f"   after the run, the ground was complete within {f['end_wait_s_max']:.0f} s (worst seed)")
            print(f"   packet store journal (flash): {f['journal_octets_per_hour']:,.0f} octets in "
                  f"{f['journal_records_per_hour']:,.0f} appends an hour")
            print(f"   retrieval cost: {f['retrieval_bandwidth_fraction_mean']:.2%} of downlink frames, "
                  f"{f['retrieval_uplink_fraction_mean']:.2%} of the uplink's capacity; "
                  f"{f['retrieve_commands_per_hour']:.1f} TM_RETRIEVE per hour; {f['attempts_spent']} counts given up "
                  f"after unanswered requests, {f['not_stored']} not in the store; {f['wall_s']:.1f} s wall")
    if args.missions:
        m = missions(args.missions)
        figures["missions_harsh"] = m
        print(f"farside mission --relay harsh, seeds 1..{args.missions}: {m['passed']} of {m['of']} pass"
              + (f"; failed: {m['failed']}" if m["failed"] else ""))
    write_json(args.json, figures, "store")


if __name__ == "__main__":
    main()
