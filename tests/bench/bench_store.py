"""Packet store and gap retrieval (figures, not pass/fail): `python -m tests.bench.bench_store`.

In virtual time (the whole loop: ground, relay, CPython rover), under the `harsh` profile and
a custom one (BER 1e-3 on the uplink, where COP-1 and TM_RETRIEVE go, 1e-5 on the downlink;
10 % frame loss and 5 % duplication both ways; a 120 s relay outage every 15 minutes: a
256-octet TM frame at BER 1e-3 would arrive intact one time in eight, with no code to save it), a rover answering a PING every 20 s and reporting HK at 1 Hz for an hour:
1. the fraction of TM packets on the ground after gap retrieval: verification reports and
   events (the goal is all of them), and housekeeping (the store keeps one a minute);
2. the time from each outage's end until the ground misses nothing it can still retrieve;
3. the downlink bandwidth retrieval costs: the store's frames against all frames sent.
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
        store = w.rover.store
        put = store.put

        def spy(pkt: Any, service: int) -> None:
            sent[struct.unpack(">H", bytes(pkt[2:4]))[0] & 0x3FFF] = (service, w.now())
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
        while w.now() - t0 < duration_s:
            out = w.relay is not None and w.relay.outage(w.now())
            if was_out and not out:
                outage_ends.append(w.now())
            was_out = out
            if int(w.now() - t0) % 20 == 0:
                rover.send_command("PING")
            rover.wait(1.0)
            if outage_ends and len(complete_after) < len(outage_ends) and st.gaps.complete:
                complete_after.append(w.now() - outage_ends[-1])
        rover.wait(300.0)  # the last gaps
        down = w.relay_stats().get("downlink", {})
        frames_total = down.get("frames_in", 0)
        c = st.gaps.counters
        kinds = {"reports_events": lambda s: s in (1, 5), "hk": lambda s: s == 3}
        frac = {}
        for k, pred in kinds.items():
            seqs = [q for q, (svc, t) in sent.items() if pred(svc) and t < w.now() - 300.0]
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
            print(f"   retrieval cost: {f['retrieval_bandwidth_fraction_mean']:.2%} of downlink frames; "
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
