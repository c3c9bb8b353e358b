"""Many settlements of one queue at once, on the configured database (PostgreSQL in CI): each
order settles once, entries are numbered without gaps, payouts go strictly from the head, and the
books balance (SPEC §4, §7, §19)."""

from __future__ import annotations

import asyncio
import random

from app.enums import EntryStatus
from app.ledger.audit import audit
from app.orders.models import Order
from app.rebate.models import Queue, QueueEntry
from app.rebate.service import settle_order, settle_orders
from tests.support.orders import NOW, paid_orders

BUYERS = 60


async def test_concurrent_settlements_of_one_queue(server):
    ids = await paid_orders(BUYERS, prefix="concurrent")
    rng = random.Random(7)
    # Every order settled by two racing single settlements and by an overlapping batch.
    work = [settle_order(order_id, now=NOW) for order_id in ids for _ in range(2)]
    work += [settle_orders(rng.sample(ids, 10), now=NOW) for _ in range(6)]
    rng.shuffle(work)
    await asyncio.gather(*work)

    assert await Order.filter(id__in=ids, settled=False).count() == 0
    entries = await QueueEntry.all().order_by("number")
    assert [e.number for e in entries] == list(range(1, BUYERS + 1))
    assert len({e.order_id for e in entries}) == BUYERS
    # 59 later contributions of 10920 repay 21840 entries strictly from the head:
    # 29 completed, the 30th half paid, the rest untouched.
    assert [e.status for e in entries[:29]] == [EntryStatus.COMPLETED] * 29
    assert entries[29].rewarded_fen == 10920
    assert entries[29].status == EntryStatus.WAITING
    assert all(e.rewarded_fen == 0 for e in entries[30:])
    queue = await Queue.get(key="mall")
    assert queue.contributed_fen == BUYERS * 10920
    assert queue.returned_fen == 10920
    assert queue.waiting_count == BUYERS - 29
    assert queue.liability_fen == (BUYERS - 29) * 21840 - 10920
    assert await audit() == []
