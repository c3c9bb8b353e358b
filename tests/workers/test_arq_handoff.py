"""With Redis the API hands paid orders to the arq workers: the orders paid together as one job,
which settles them all."""

from __future__ import annotations

import asyncio

from app.orders.models import Order
from tests.support.orders import NOW, paid_orders
from workers.runtime import QUEUE_NAME, ArqJobs, settle_job


class RecordingPool:
    """Stands for arq's pool: keeps what was enqueued, or fails as told."""

    def __init__(self, fail: bool = False) -> None:
        self.jobs: list[tuple[str, object, str]] = []
        self.times: list[float] = []
        self.fail = fail

    async def enqueue_job(self, name: str, *args: object, _queue_name: str) -> None:
        if self.fail:
            raise ConnectionError("redis is away")
        self.jobs.append((name, *args, _queue_name))
        self.times.append(asyncio.get_running_loop().time())


async def test_orders_paid_in_one_turn_go_as_one_job():
    pool = RecordingPool()
    jobs = ArqJobs(pool)
    paid = asyncio.get_running_loop().create_future()

    async def request(order_id: int) -> None:
        # As the notifications of one recorded batch: all resume when the batch is written.
        await paid
        jobs.settle_soon(order_id)

    requests = [asyncio.create_task(request(order_id)) for order_id in (11, 12, 13)]
    await asyncio.sleep(0)
    paid.set_result(None)
    await asyncio.gather(*requests)
    await jobs.stop()
    assert pool.jobs == [("settle", [11, 12, 13], QUEUE_NAME)]

    jobs.settle_soon(14)
    await jobs.stop()
    assert pool.jobs[1:] == [("settle", [14], QUEUE_NAME)]


async def test_orders_due_after_a_hand_off_wait_for_the_workers_next_poll_together():
    pool = RecordingPool()
    jobs = ArqJobs(pool, interval=0.2)
    jobs.settle_soon(31)
    await asyncio.sleep(0)
    # After a quiet spell the first goes at once.
    assert pool.jobs == [("settle", [31], QUEUE_NAME)]
    jobs.settle_soon(32)
    await asyncio.sleep(0.05)
    jobs.settle_soon(33)
    assert len(pool.jobs) == 1
    await jobs.stop()
    assert pool.jobs[1:] == [("settle", [32, 33], QUEUE_NAME)]
    assert pool.times[1] - pool.times[0] >= 0.2


async def test_a_lost_enqueue_is_logged_and_the_next_goes_on(caplog):
    pool = RecordingPool(fail=True)
    jobs = ArqJobs(pool)
    jobs.settle_soon(21)
    jobs.settle_soon(22)
    await jobs.stop()
    assert "could not hand orders [21, 22] to the workers" in caplog.text
    pool.fail = False
    jobs.settle_soon(23)
    await jobs.stop()
    assert pool.jobs == [("settle", [23], QUEUE_NAME)]


async def test_the_job_settles_its_orders_and_what_else_is_due(server):
    ids = await paid_orders(4, prefix="handoff")
    context = {"clock": lambda: NOW}
    assert await settle_job(context, ids[2:]) == 4
    assert not await Order.filter(id__in=ids, settled=False).exists()
    # Already settled: nothing more to do, and a job of one id (as enqueued before) is read too.
    assert await settle_job(context, ids[0]) == 0
