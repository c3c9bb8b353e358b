"""Without Redis the server runs the jobs itself: its timers settle what no task settled."""

from __future__ import annotations

import asyncio

from app.orders.models import Order
from tests.support.orders import NOW, paid_orders
from workers.runtime import InProcessJobs


async def test_the_timers_settle_orders_nobody_handed_over(server):
    jobs = InProcessJobs(clock=lambda: NOW)
    await jobs.start(server.services.wechat, interval=0.05)
    try:
        # Paid after the start's catch-up and handed to nobody: only the timers find them.
        ids = await paid_orders(3, prefix="timer")
        for _ in range(200):
            if not await Order.filter(id__in=ids, settled=False).exists():
                break
            await asyncio.sleep(0.02)
        assert not await Order.filter(id__in=ids, settled=False).exists()
    finally:
        await jobs.stop()
