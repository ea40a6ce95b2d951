"""The reconcile queue: no key twice, urgent first, earliest schedule wins."""

import asyncio

from modelops_operator.controller import WorkQueue


def run(coro):
    return asyncio.run(coro)


def test_keys_are_deduplicated_and_urgent_goes_first():
    async def scenario():
        q = WorkQueue()
        for key in [("ns", "a"), ("ns", "b"), ("ns", "a")]:
            q.add(key)
        q.add(("ns", "c"), urgent=True)
        q.add(("ns", "b"), urgent=True)  # promoted: waits once, in the urgent lane
        assert len(q) == 3
        return [await q.get() for _ in range(3)]

    assert run(scenario()) == [("ns", "c"), ("ns", "b"), ("ns", "a")]


def test_a_key_in_work_is_not_handed_out_twice():
    async def scenario():
        q = WorkQueue()
        q.add(("ns", "a"))
        key = await q.get()
        q.add(key, urgent=True)  # changed while being reconciled
        assert len(q) == 0
        waiter = asyncio.create_task(q.get())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        q.done(key)
        return await asyncio.wait_for(waiter, 1)

    assert run(scenario()) == ("ns", "a")


def test_earliest_schedule_wins():
    async def scenario():
        q = WorkQueue()
        q.add(("ns", "a"), delay=5)
        q.add(("ns", "a"), delay=0.05)
        q.add(("ns", "a"), delay=3)
        return await asyncio.wait_for(q.get(), 1)

    assert run(scenario()) == ("ns", "a")


def test_calm_waits_until_no_urgent_key_is_queued():
    async def scenario():
        q = WorkQueue()
        q.add(("ns", "routine"))
        await asyncio.wait_for(q.calm(), 1)  # routine work does not hold Events back
        q.add(("ns", "a"), urgent=True)
        q.add(("ns", "routine"), urgent=True)  # promoted from the routine lane
        waiter = asyncio.create_task(q.calm())
        taken = [await q.get()]
        await asyncio.sleep(0.01)
        assert not waiter.done()  # one urgent key still waits
        taken.append(await q.get())
        await asyncio.wait_for(waiter, 1)
        return taken

    assert run(scenario()) == [("ns", "a"), ("ns", "routine")]
