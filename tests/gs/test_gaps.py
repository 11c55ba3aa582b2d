"""The ground's gap tracker (hil.gs.gaps): gaps by sequence count, duplicates, restarts, and
what a retrieval closes."""

from __future__ import annotations

from hil.gs.gaps import GapTracker
from protocols.pus import build_tm_packet


def _pkt(seq: int, tag: int = 0) -> bytes:
    return build_tm_packet(32, seq, 1, 7, bytes([tag, seq & 0xFF, 0, 0]))


def _feed(g: GapTracker, seqs: list[int], t: float = 0.0, retrieved: bool = False, tag: int = 0) -> list[bool]:
    return [g.note(32, s, _pkt(s, tag), t, retrieved) for s in seqs]


def test_skipped_counts_are_missing_and_a_retrieved_one_fills_its_place() -> None:
    g = GapTracker(settle_s=1.0)
    _feed(g, [0, 1, 2, 5, 6, 9])
    assert g.missing() == [3, 4, 7, 8]
    assert g.due(0.5) is None  # not settled yet
    r = g.due(1.0)
    assert r is not None and (r.first, r.count) == (3, 6)  # one request spans both gaps
    g.sent(r, (1, 2))
    assert g.due(2.0) is None  # one at a time
    assert _feed(g, [3, 4, 5], retrieved=True) == [True, True, False]  # 5 is a copy
    assert g.missing() == [7, 8] and g.counters.filled == 2 and g.counters.duplicates == 1


def test_a_clean_retrieval_gives_up_what_the_store_did_not_hold_else_asks_again() -> None:
    g = GapTracker(settle_s=0.0, max_attempts=2)
    _feed(g, [0, 4])
    r = g.due(0.0)
    assert r is not None
    g.sent(r, (1, 1))
    _feed(g, [1], retrieved=True)
    g.report(32, r.first, r.count, 2)  # the rover sent two: one was lost on the way
    g.finished(True)
    assert g.missing() == [2, 3]  # asked again
    r = g.due(0.0)
    assert r is not None and (r.first, r.count) == (2, 2)
    g.sent(r, (1, 2))
    _feed(g, [2], retrieved=True)
    g.report(32, 2, 2, 1)  # all it holds arrived: 3 was not stored (decimated housekeeping)
    g.finished(True)
    assert g.missing() == [] and g.complete
    assert g.counters.not_stored == 1 and g.counters.attempts_spent == 0


def test_unanswered_requests_give_up_after_the_attempts() -> None:
    g = GapTracker(settle_s=0.0, answer_s=10.0, max_attempts=2, silence_s=1000.0)
    _feed(g, [0, 2])
    for k in range(2):
        r = g.due(100.0 * k)
        assert r is not None
        g.sent(r, (1, k))
        g.heard(100.0 * k + 5)
        assert not g.expired(100.0 * k + 5)
        g.heard(100.0 * k + 10)
        assert g.expired(100.0 * k + 10)
        g.finished(False)
    assert g.complete and g.counters.attempts_spent == 1


def test_a_silent_link_spends_no_attempt_and_an_answer_restarts_the_wait() -> None:
    g = GapTracker(settle_s=0.0, answer_s=10.0, silence_s=5.0, timeout_s=500.0)

    def live(t0: float, t1: float) -> None:  # a TM frame every second
        for k in range(int(t0), int(t1) + 1):
            g.heard(float(k))

    _feed(g, [0, 9])
    r = g.due(0.0)
    assert r is not None
    g.sent(r, (1, 1))
    live(0, 3)
    # a relay outage: no TM from 3 s to 120 s; the request waits in the relay
    assert not g.expired(60.0)
    live(120, 129)  # TM again: the wait starts over at 120 s
    assert not g.expired(129.0)
    _feed(g, [1, 2], t=129.0, retrieved=True)  # its first packets: the answer is coming
    live(130, 138)
    assert not g.expired(138.0)
    live(139, 139)
    assert g.expired(139.0)  # then nothing for answer_s of a live link: lost on the way
    assert g.expired(500.0)  # and whatever the link does, after timeout_s


def test_duplicated_store_frames_do_not_pass_for_a_lost_packet() -> None:
    g = GapTracker(settle_s=0.0)
    _feed(g, [0, 4])
    r = g.due(0.0)
    assert r is not None
    g.sent(r, (1, 1))
    _feed(g, [1, 1, 2], retrieved=True)  # the link duplicated the frame with 1; 3 was lost
    g.report(32, r.first, r.count, 3)
    assert r.got == 2
    g.finished(True)
    assert g.missing() == [3] and g.counters.not_stored == 0  # asked again, not given up


def test_a_restarted_count_is_a_reboot_not_a_duplicate() -> None:
    g = GapTracker(settle_s=0.0)
    _feed(g, list(range(0, 300)) + [305])
    assert g.missing() == [300, 301, 302, 303, 304]
    assert _feed(g, [2], tag=1) == [True]  # new octets behind the count: the rover restarted at 0
    assert g.counters.restarts == 1 and g.counters.lost_on_restart == 5
    assert g.missing() == [0, 1]  # the new boot's first packets, still in its store
    assert _feed(g, [3, 3], tag=1) == [True, False]


def test_the_first_packet_heard_counts_what_came_before_it_as_missing() -> None:
    g = GapTracker()
    _feed(g, [20])
    assert g.missing() == list(range(20))
    h = GapTracker()
    _feed(h, [5000])  # a ground joining a long-running rover asks for nothing
    assert h.missing() == []
