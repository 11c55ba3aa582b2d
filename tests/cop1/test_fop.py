"""FOP-1 (protocols/cop1.py) scenarios with a FARM-1 on the other end, step by step."""

from __future__ import annotations

import pytest

from firmware_py import farm as F
from protocols.cop1 import (
    BC_UNLOCK,
    Clcw,
    CommandState,
    FailReason,
    Fop1,
    FopConfig,
    FopState,
    FrameKind,
    bc_set_vr,
    size_for_link,
)
from protocols.errors import ProtocolError


def deliver(farm: F.Farm, fop: Fop1, txs: list, now: float, lose: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
    codes = []
    for i, tx in enumerate(txs):
        if i in lose:
            continue
        if tx.kind == FrameKind.AD:
            codes.append(farm.on_frame(0, 0, tx.ns, memoryview(tx.data)))
        elif tx.kind == FrameKind.BD:
            codes.append(farm.on_frame(1, 0, 0, memoryview(tx.data)))
        else:
            codes.append(farm.on_frame(1, 1, 0, memoryview(tx.data)))
    fop.on_clcw(farm.clcw(), now)
    return codes


def test_window_k_limits_outstanding_frames_and_acks_release_them() -> None:
    fop = Fop1(FopConfig(k=3, t1_s=5))
    farm = F.Farm()
    fop.initiate_ad(0)
    recs = [fop.submit(b"c%d" % i, 0) for i in range(5)]
    txs = fop.poll(0)
    assert [t.ns for t in txs] == [0, 1, 2]
    assert [r.state for r in recs] == [CommandState.SENT] * 3 + [CommandState.QUEUED] * 2
    deliver(farm, fop, txs, 1)
    assert [r.state for r in recs[:3]] == [CommandState.ACKNOWLEDGED] * 3
    assert [t.ns for t in fop.poll(1)] == [3, 4]
    fop.mark_verified(recs[0], 2)
    assert recs[0].state == CommandState.VERIFIED and recs[0].verified_at == 2


def test_retransmit_flag_triggers_one_go_back_n_pass_of_identical_bytes() -> None:
    built = []

    def builder(kind: FrameKind, ns: int, payload: bytes) -> bytes:
        built.append(ns)
        return b"%s|%d|%s" % (kind.value.encode(), ns, payload)

    fop = Fop1(FopConfig(k=3, t1_s=5), frame_builder=builder)
    farm = F.Farm()
    fop.initiate_ad(0)
    for i in range(3):
        fop.submit(b"c%d" % i, 0)
    first = fop.poll(0)
    deliver(farm, fop, first, 1, lose={0})  # frame 0 lost: FARM asks for retransmission
    assert farm.retransmit == 1
    again = fop.poll(1)
    assert [t.ns for t in again] == [0, 1, 2] and all(t.retransmission for t in again)
    assert [t.data for t in again] == [t.data for t in first]
    assert built == [0, 1, 2]  # built once each
    fop.on_clcw(farm.clcw(), 1.5)  # same CLCW again: no second pass
    assert fop.poll(1.5) == []
    deliver(farm, fop, again, 2)
    assert fop.idle and fop.stats.ad_retransmitted == 3


def test_t1_expiry_retransmits_then_the_transmission_limit_leaves_sent_ones_unknown() -> None:
    fop = Fop1(FopConfig(k=2, t1_s=4, transmission_limit=3))
    fop.initiate_ad(0)
    a, b, c = (fop.submit(x, 0) for x in (b"a", b"b", b"c"))
    assert len(fop.poll(0)) == 2
    assert fop.next_deadline() == 4
    assert fop.poll(3.9) == []
    assert [t.ns for t in fop.poll(4)] == [0, 1]
    assert [t.ns for t in fop.poll(8)] == [0, 1]
    assert fop.poll(12) == []  # third T1 expiry: limit reached
    assert fop.state == FopState.INITIAL and fop.alert == FailReason.TRANSMISSION_LIMIT
    # sent and never acknowledged: it may have reached FARM; the one never sent waits its turn
    assert (a.state, a.reason, a.transmissions) == (CommandState.UNKNOWN, FailReason.TRANSMISSION_LIMIT, 3)
    assert c.state == CommandState.QUEUED and not c.sent and fop.queued_count == 1
    fop.initiate_ad(20)
    assert [t.command for t in fop.poll(20)] == [c]
    # the operator's terminate fails what was never sent, apart from what was
    d = fop.submit(b"d", 21)
    fop.terminate(22)
    assert (c.state, d.state) == (CommandState.UNKNOWN, CommandState.FAILED)
    assert "never sent" in d.detail and not d.sent


def test_lockout_leaves_outstanding_unknown_and_unlock_plus_set_vr_recovers() -> None:
    fop = Fop1(FopConfig(k=3, t1_s=5))
    farm = F.Farm(window=10)
    fop.initiate_ad(0)
    recs = [fop.submit(b"c%d" % i, 0) for i in range(3)]
    txs = fop.poll(0)
    farm.on_frame(0, 0, 100, memoryview(b"stray"))  # something knocks FARM into Lockout
    deliver(farm, fop, txs, 1)
    assert fop.state == FopState.INITIAL and fop.alert == FailReason.LOCKOUT
    assert all(r.state == CommandState.UNKNOWN and r.reason == FailReason.LOCKOUT for r in recs)
    assert farm.vr == 0 and fop.vs == 3
    fop.initiate_ad_unlock(2)
    bc = fop.poll(2)
    assert [(t.kind, t.data) for t in bc] == [(FrameKind.BC, BC_UNLOCK)]
    deliver(farm, fop, bc, 3)
    # FARM is at V(R)=0 but frames 0..2 may still be in flight: FOP moves FARM to V(S)
    bc2 = fop.poll(3)
    assert [t.data for t in bc2] == [bc_set_vr(3)]
    deliver(farm, fop, bc2, 4)
    assert fop.state == FopState.ACTIVE and farm.vr == 3
    # a stale frame from before the lockout is now in FARM's negative window
    assert farm.on_frame(0, 0, 2, memoryview(b"c2")) == F.DISCARD
    r = fop.submit(b"next", 5)
    deliver(farm, fop, fop.poll(5), 6)
    assert r.state == CommandState.ACKNOWLEDGED and r.ns == 3


def test_late_clcw_after_an_alert_still_acknowledges_what_farm_took() -> None:
    fop = Fop1(FopConfig(k=2, t1_s=1, transmission_limit=1))
    farm = F.Farm()
    fop.initiate_ad(0)
    a, b = fop.submit(b"a", 0), fop.submit(b"b", 0)
    txs = fop.poll(0)
    for t in txs:
        farm.on_frame(0, 0, t.ns, memoryview(t.data))  # FARM takes both, CLCW lost
    fop.poll(1)  # T1: limit 1 reached
    assert a.state == CommandState.UNKNOWN
    fop.on_clcw(farm.clcw(), 2)
    assert (a.state, b.state) == (CommandState.ACKNOWLEDGED, CommandState.ACKNOWLEDGED)
    assert a.reason is None and "after the alert" in a.detail


def test_wait_holds_transmission_until_farm_has_a_buffer() -> None:
    fop = Fop1(FopConfig(k=2, t1_s=10))
    farm = F.Farm()
    fop.initiate_ad(0)
    farm.set_buffer_full(True)
    r = fop.submit(b"a", 0)
    deliver(farm, fop, fop.poll(0), 1)
    assert farm.wait == 1 and fop.poll(2) == []
    farm.set_buffer_full(False)
    fop.on_clcw(farm.clcw(), 3)
    deliver(farm, fop, fop.poll(3), 4)
    assert r.state == CommandState.ACKNOWLEDGED


def test_bypass_goes_out_at_once_even_in_lockout() -> None:
    fop = Fop1()
    r = fop.submit_bd(b"SAFE!", 0)
    assert fop.next_deadline() == float("-inf")
    (tx,) = fop.poll(0)
    assert tx.kind == FrameKind.BD and tx.data == b"SAFE!" and r.state == CommandState.SENT


def test_terminate_fails_everything_outstanding() -> None:
    fop = Fop1(FopConfig(k=1))
    fop.initiate_ad(0)
    a, b = fop.submit(b"a", 0), fop.submit(b"b", 0)
    fop.poll(0)
    fop.terminate(1)
    assert {a.reason, b.reason} == {FailReason.TERMINATED} and fop.state == FopState.INITIAL


def test_initiate_with_clcw_check_waits_for_matching_nr() -> None:
    fop = Fop1(FopConfig(t1_s=2, transmission_limit=2))
    fop.initiate_ad(0, check_clcw=True)
    fop.on_clcw(Clcw(vcid=1, lockout=False, wait=False, retransmit=False, farm_b=0, nr=5), 1)
    assert fop.state == FopState.INIT_CLCW
    fop.on_clcw(Clcw(vcid=1, lockout=False, wait=False, retransmit=False, farm_b=0, nr=0), 1)
    assert fop.state == FopState.ACTIVE


def test_bc_unconfirmed_after_its_limit_fails_initiation_and_the_queue_waits() -> None:
    fop = Fop1(FopConfig(t1_s=2, bc_limit=2))
    q = fop.submit(b"a", 0)
    fop.initiate_ad_set_vr(9, 0)
    assert [t.kind for t in fop.poll(0)] == [FrameKind.BC]
    assert [t.kind for t in fop.poll(2)] == [FrameKind.BC]
    fop.poll(4)
    assert fop.state == FopState.INITIAL and fop.alert == FailReason.INIT_FAILED
    assert q.state == CommandState.QUEUED and fop.queued_count == 1  # never sent: still queued


def test_clcw_of_another_vc_is_ignored_and_words_round_trip() -> None:
    c = Clcw(vcid=7, lockout=True, wait=False, retransmit=True, farm_b=2, nr=200)
    assert Clcw.from_word(c.to_word()) == c
    fop = Fop1(FopConfig(vcid=1))
    fop.on_clcw(c, 0)
    assert fop.stats.clcws == 0
    with pytest.raises(ProtocolError):
        Clcw.from_word(0x80000000)


def test_sizing_for_queqiao_fills_the_round_trip_and_covers_it_with_t1() -> None:
    s = size_for_link(1.75, 1.75, 125, 285_000, tc_frame_octets=60)
    assert s.tc_frame_s == pytest.approx(3.84)
    assert s.k == 2  # ceil((3.5 + 0.007) / 3.84) + 1
    assert s.t1_s > s.k * s.tc_frame_s + s.round_trip_s
    lab = size_for_link(0, 0, None, None, tc_frame_octets=60)
    assert lab.k == 31 and lab.t1_s == pytest.approx(0.5)


@pytest.mark.parametrize("kw", [{"k": 0}, {"t1_s": 0}, {"transmission_limit": 0}])
def test_bad_config_is_refused(kw: dict) -> None:
    with pytest.raises(ProtocolError):
        FopConfig(**kw)
