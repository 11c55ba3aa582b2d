"""hil/vclock.py: the virtual-time loop jumps to timers and is deterministic."""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

import pytest

from hil import vclock


def test_an_hour_of_sleeping_never_waits_on_the_real_clock_and_lands_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # no wall-clock bound (fragile on a loaded machine): every real selector call the loop
    # makes must be a non-blocking poll, and the hour must be one jump
    waits: list[float | None] = []
    real_select = selectors.DefaultSelector.select

    def select(self: selectors.BaseSelector, timeout: float | None = None) -> Any:
        waits.append(timeout)
        return real_select(self, timeout)

    monkeypatch.setattr(selectors.DefaultSelector, "select", select)

    async def main() -> tuple[float, float, int]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(3600)
        return t0, loop.time(), loop.jumps  # type: ignore[attr-defined]

    t0, t1, jumps = vclock.run(main(), start=100.0)
    assert t0 == 100.0 and t1 == 3700.0
    assert jumps == 1
    assert waits and all(w == 0 for w in waits), waits


def test_concurrent_timers_fire_in_time_order_at_their_own_times() -> None:
    seen: list[tuple[str, float]] = []

    async def sleeper(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        seen.append((name, asyncio.get_running_loop().time()))

    async def main() -> None:
        await asyncio.gather(sleeper("c", 3.5), sleeper("a", 1.75), sleeper("b", 1.75 + 1e-6))

    vclock.run(main())
    assert seen == [("a", 1.75), ("b", 1.75 + 1e-6), ("c", 3.5)]


def test_wait_for_timeouts_and_queues_work_in_virtual_time() -> None:
    async def main() -> tuple[bool, float]:
        q: asyncio.Queue[int] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        loop.call_later(10.0, q.put_nowait, 1)
        try:
            await asyncio.wait_for(q.get(), timeout=5.0)
            timed_out = False
        except asyncio.TimeoutError:
            timed_out = True
        await q.get()
        return timed_out, loop.time()

    assert vclock.run(main()) == (True, 10.0)


def test_runs_are_deterministic() -> None:
    import random

    async def main(seed: int) -> list[float]:
        rng = random.Random(seed)
        loop = asyncio.get_running_loop()
        out: list[float] = []

        async def worker() -> None:
            for _ in range(20):
                await asyncio.sleep(rng.random())
                out.append(loop.time())

        await asyncio.gather(*(worker() for _ in range(3)))
        return out

    assert vclock.run(main(7)) == vclock.run(main(7))


def test_a_loop_that_never_lets_time_move_is_a_clear_error_naming_the_spinner() -> None:
    # a poller that retries a wait shorter than it can ever be (sleep(0)) while a timer is due
    # later: the clock can never move; the loop says so instead of spinning for ever
    async def spinner() -> None:
        while True:
            await asyncio.sleep(0)

    async def main() -> None:
        asyncio.get_running_loop().call_later(0.001, lambda: None)
        await spinner()

    loop = vclock.new_event_loop(start=383.6)
    loop.stall_passes = 20_000
    try:
        with pytest.raises(vclock.VirtualTimeStall) as err:
            loop.run_until_complete(main())
    finally:
        loop.close()
    msg = str(err.value)
    assert "stalled at t = 383.600000 s" in msg
    assert "next timer at 383.601000 s" in msg
    assert "spinner" in msg


def test_a_busy_burst_that_lets_time_move_is_not_a_stall() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        for _ in range(30_000):  # many passes, but the clock moves between them
            await asyncio.sleep(0.001)
        return loop.time()

    loop = vclock.new_event_loop()
    loop.stall_passes = 20_000
    try:
        assert loop.run_until_complete(main()) == pytest.approx(30.0)
    finally:
        loop.close()


def test_sleeps_and_other_timers_share_one_time_order_and_cancel_cleanly() -> None:
    # asyncio.sleep's timers are the loop's light ones (_Wake), in the same heap as the
    # TimerHandles of call_later and wait_for; a cancelled sleep's timer is dropped
    seen: list[tuple[str, float]] = []

    async def sleeper(name: str, s: float) -> None:
        await asyncio.sleep(s)
        seen.append((name, asyncio.get_running_loop().time()))

    async def main() -> int:
        loop = asyncio.get_running_loop()
        doomed = asyncio.create_task(sleeper("cancelled", 0.5))
        loop.call_later(1.25, lambda: seen.append(("call_later", loop.time())))
        tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("2", 2.0), ("1", 1.0), ("1.5", 1.5), ("0", 0.0))]
        await asyncio.sleep(0.1)
        doomed.cancel()
        try:
            await asyncio.wait_for(asyncio.Event().wait(), 1.75)
        except asyncio.TimeoutError:
            seen.append(("wait_for", loop.time()))
        await asyncio.gather(*tasks)
        assert doomed.cancelled()
        return len(loop._scheduled)  # type: ignore[attr-defined]

    assert vclock.run(main()) == 0
    assert seen == [("0", 0.0), ("1", 1.0), ("call_later", 1.25), ("1.5", 1.5), ("wait_for", 1.85), ("2", 2.0)]


def test_the_firmwares_sleep_ms_wakes_as_asyncio_sleep_does() -> None:
    # firmware_py.aio.sleep_ms awaits the loop's sleep_future: the same timers, woken at the
    # same virtual times and in the same order as asyncio.sleep's; a task cancelled in one
    # stops there, and its timer then fires harmlessly
    from firmware_py.aio import sleep_ms

    def order(sleep: Any) -> list[tuple[str, float]]:
        seen: list[tuple[str, float]] = []

        async def ticker(name: str, ms: int, n: int) -> None:
            for _ in range(n):
                await sleep(ms)
                seen.append((name, asyncio.get_running_loop().time()))

        async def main() -> None:
            doomed = asyncio.create_task(ticker("doomed", 300, 5))
            tasks = [asyncio.create_task(ticker(n, ms, 6)) for n, ms in (("a", 100), ("b", 250), ("c", 100))]
            await asyncio.sleep(0.5)
            doomed.cancel()
            await asyncio.gather(*tasks)
            with pytest.raises(asyncio.CancelledError):
                await doomed
            await asyncio.sleep(1.0)  # past the cancelled sleep's timer

        vclock.run(main())
        return seen

    fast = order(sleep_ms)
    assert fast == order(lambda ms: asyncio.sleep(ms * 0.001))
    assert [n for n, _ in fast].count("doomed") == 1 and fast[-1] == ("b", 1.5)
