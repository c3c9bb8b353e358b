"""The embedded default's job runner: settlement inside the server process, after the reply."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from app.orders.service import orders_awaiting_settlement
from app.rebate.service import settle_order

log = logging.getLogger("rebate.jobs")

RETRY_DELAYS = (0.05, 0.2, 1.0, 5.0)


class InProcessJobs:
    """Runs settlements as asyncio tasks. Settlement is idempotent by the database, so running one
    twice, or after a crash through `recover`, is harmless."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tasks: set[asyncio.Task[None]] = set()

    def settle_soon(self, order_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self._settle(order_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, order_id: int) -> None:
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            if delay:
                await asyncio.sleep(delay)
            try:
                await settle_order(order_id, now=self._clock())
                return
            except Exception:
                log.exception("settling order %s failed (attempt %s)", order_id, attempt + 1)
        log.error("order %s stays unsettled until the next recovery sweep", order_id)

    async def recover(self) -> int:
        """Settle every paid order whose settlement did not happen (a crash, a lost task)."""
        count = 0
        while True:
            pending = await orders_awaiting_settlement()
            progressed = 0
            for order_id in pending:
                if await settle_order(order_id, now=self._clock()):
                    progressed += 1
            count += progressed
            if not pending or not progressed:
                return count

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
