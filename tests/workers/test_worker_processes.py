"""The production topology with local processes: `rebate worker` processes share one hot queue
on PostgreSQL and Redis; FIFO and every invariant of SPEC §19 hold (runs when CI gives both)."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import pytest

from app.db import is_postgres
from app.enums import EntryStatus
from app.ledger.audit import audit
from app.orders.models import Order
from app.rebate.models import Queue, QueueEntry
from tests.support.orders import paid_orders

pytestmark = pytest.mark.skipif(
    not (is_postgres(os.environ.get("DATABASE_URL")) and os.environ.get("REDIS_URL")),
    reason="needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL), as CI gives them",
)
ORDERS = 600


async def _run_worker(server, batch_size: int) -> str:
    env = {
        **os.environ,
        "SETTLE_BATCH_SIZE": str(batch_size),
        "APP_ENV": "test",
        "WECHAT_FAKE": "true",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "worker",
        "--burst",
        "--public-base-url",
        server.base_url,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_worker_processes_share_a_hot_queue(server):
    ids = await paid_orders(ORDERS, prefix="hot")
    logs = await asyncio.gather(*[_run_worker(server, batch_size=10) for _ in range(3)])
    settled_by = [
        int(re.search(r"settled (\d+) orders", log).group(1))
        for log in logs  # type: ignore[union-attr]
    ]
    assert sum(settled_by) == ORDERS
    assert await Order.filter(id__in=ids, settled=False).count() == 0
    entries = await QueueEntry.all().order_by("number")
    assert [e.number for e in entries] == list(range(1, ORDERS + 1))
    # 599 later contributions of 10920 repay 21840 entries strictly from the head:
    # 299 completed, the 300th half paid, the rest untouched.
    assert all(e.status == EntryStatus.COMPLETED for e in entries[:299])
    assert entries[299].rewarded_fen == 10920
    assert all(e.rewarded_fen == 0 for e in entries[300:])
    queue = await Queue.get(key="mall")
    assert queue.returned_fen == 10920
    assert await audit() == []
    # Each process took part in the backlog.
    assert all(count > 0 for count in settled_by), settled_by
