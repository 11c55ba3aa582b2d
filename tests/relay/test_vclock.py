"""hil/vclock.py: the virtual-time loop jumps to timers and is deterministic."""

from __future__ import annotations

import asyncio
import time

from hil import vclock


def test_an_hour_of_sleeping_takes_no_wall_time_and_lands_exactly() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(3600)
        return t0, loop.time()

    wall = time.monotonic()
    t0, t1 = vclock.run(main(), start=100.0)
    assert t0 == 100.0 and t1 == 3700.0
    assert time.monotonic() - wall < 2.0


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
