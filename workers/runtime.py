"""Who runs the jobs: arq workers on Redis in production, the server itself without Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.config import get_settings
from app.distribution.service import pay_daily_dividend, release_due
from app.notifications.sender import send_due
from app.rebate.figures import warm_figure_caches
from app.rebate.service import settle_order, settle_orders
from app.startup import prepare_collector
from app.wechat.client import WeChatGateway
from workers.jobs import apply_due_resets, reconcile_unpaid, settle_backlog, settle_pending

log = logging.getLogger("rebate.jobs")

QUEUE_NAME = "rebate:jobs"
# How often the workers look for new jobs (arq's poll_delay), in seconds.
POLL_DELAY = 0.05
HEALTH_CHECK_KEY = "rebate:jobs:health-check"
RETRY_DELAYS = (0.05, 0.2, 1.0, 5.0)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def zone() -> ZoneInfo:
    return get_settings().timezone


def yesterday(now: datetime) -> date:
    """The operator's previous calendar day: the day whose turnover the dividend shares."""
    return now.astimezone(zone()).date() - timedelta(days=1)


async def run_periodic_jobs(gateway: WeChatGateway, now: datetime) -> None:
    """Everything that runs on a timer; each part on its own, so one failure stops no other."""
    for name, job in (
        # Payments found by asking WeChat first, so that the sweep settles them this round.
        ("unpaid orders", lambda: reconcile_unpaid(gateway, now)),
        ("settlement sweep", lambda: settle_backlog(now)),
        ("scheduled resets", lambda: apply_due_resets(now)),
        ("commissions", lambda: release_due(now)),
        ("dividend", lambda: pay_daily_dividend(yesterday(now), now=now, tz=zone())),
        ("notifications", lambda: send_due(gateway, now)),
        ("figure caches", warm_figure_caches),
    ):
        try:
            await job()
        except Exception:
            log.exception("%s failed; the next round tries again", name)


class InProcessJobs:
    """The embedded default: settlement as asyncio tasks in the server, the timers in a loop."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._tasks: set[asyncio.Task[Any]] = set()
        self._periodic: asyncio.Task[None] | None = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def settle_soon(self, order_id: int) -> None:
        self._spawn(self._settle(order_id))

    async def _settle(self, order_id: int) -> None:
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            if delay:
                await asyncio.sleep(delay)
            try:
                await settle_order(order_id, now=self._clock())
                return
            except Exception:
                log.exception("settling order %s failed (attempt %s)", order_id, attempt + 1)
        log.error("order %s stays unsettled until the next sweep", order_id)

    async def start(self, gateway: WeChatGateway, *, interval: float | None) -> None:
        """Catch up on what a stop left behind, then run the timers every `interval` seconds."""
        now = self._clock()
        await settle_backlog(now)
        await apply_due_resets(now)
        if interval is not None:
            self._periodic = asyncio.get_running_loop().create_task(self._loop(gateway, interval))

    async def _loop(self, gateway: WeChatGateway, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await run_periodic_jobs(gateway, self._clock())

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        if self._periodic is not None:
            self._periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._periodic
        await self.drain()


class ArqJobs:
    """The API side with Redis: hand settlement to the arq workers.

    Orders go to the workers as one job per hand-off, and a process hands off at most once per
    poll of the workers: an enqueue costs three Redis round trips and more CPU than recording a
    payment, so one per order (or per batch, under load) would be much of a notification's
    cost, and a worker looking every `POLL_DELAY` would not settle them sooner. The first order
    after a quiet spell goes at once, with those paid in the same turn of the event loop (a
    recorded batch resumes its requests together).
    """

    def __init__(self, pool: Any, interval: float = POLL_DELAY) -> None:
        self._pool = pool
        self._interval = interval
        self._due: list[int] = []
        # The one task handing orders off, while there are any (it also keeps the task alive).
        self._sender: asyncio.Task[None] | None = None
        self._next_at = 0.0

    def settle_soon(self, order_id: int) -> None:
        # The order's row is the durable hand-off: if this enqueue is lost, the sweep settles it.
        self._due.append(order_id)
        if self._sender is None:
            # Runs after the callbacks already scheduled: the rest of the batch joins first.
            self._sender = asyncio.get_running_loop().create_task(self._hand_off_due())

    async def _hand_off_due(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._due:
                if (wait := self._next_at - loop.time()) > 0:
                    await asyncio.sleep(wait)
                order_ids, self._due = self._due, []
                self._next_at = loop.time() + self._interval
                try:
                    await self._pool.enqueue_job("settle", order_ids, _queue_name=QUEUE_NAME)
                except Exception:
                    log.exception(
                        "could not hand orders %s to the workers; the sweep will", order_ids
                    )
        finally:
            self._sender = None

    async def start(self, gateway: WeChatGateway, *, interval: float | None) -> None:
        """Workers catch up at their own start; the API has nothing to do."""

    async def _handed_off(self) -> None:
        while self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until every job due by now has been run by the workers (tests use this)."""
        from arq.utils import timestamp_ms

        await self._handed_off()
        while True:
            # Scored as arq scores a job (rounded, not truncated): a job enqueued this very
            # millisecond is due.
            due = await self._pool.zcount(QUEUE_NAME, "-inf", timestamp_ms())
            # arq keeps a finished cron job's in-progress key on purpose (no second run of the
            # same tick): only the other jobs count.
            running = [
                key
                for key in await self._pool.keys("arq:in-progress:*")
                if not key.startswith(b"arq:in-progress:cron:")
            ]
            if not due and not running:
                return
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        # The workers run in their own processes: the API only finishes handing its jobs over.
        await self._handed_off()


# --- the arq worker ------------------------------------------------------------------------------


async def settle_job(ctx: dict[str, Any], order_ids: list[int] | int) -> int:
    """Payments were recorded: settle a batch of the oldest due orders, then these for sure.

    The batch skips orders other transactions hold (a duplicate notification may hold one for a
    moment), so the job ends by waiting for its own orders. A failure is retried by arq. A single
    id is what jobs enqueued one order at a time carry.
    """
    from arq.worker import Retry

    ids = [order_ids] if isinstance(order_ids, int) else list(order_ids)
    now = ctx["clock"]()
    try:
        settled = await settle_pending(now)
        settled += len(await settle_orders(ids, now=now))
    except Exception as exc:
        log.warning("settle job for orders %s failed, retrying: %s", ids, exc)
        raise Retry(defer=min(2 ** ctx.get("job_try", 1), 60)) from exc
    log.info("settle job for %s orders settled %s orders", len(ids), settled)
    return settled


async def sweep_job(ctx: dict[str, Any]) -> None:
    await run_periodic_jobs(ctx["gateway"], ctx["clock"]())


def worker_options(
    gateway: WeChatGateway,
    *,
    clock: Clock = utc_now,
    database_url: str | None = None,
    timers: bool = True,
) -> dict[str, Any]:
    """The arq Worker's arguments; `database_url` opens and closes the database with the worker.

    `timers=False` leaves out the periodic sweep (tests run it themselves when they mean to).
    """
    from arq import cron
    from arq.worker import func

    async def startup(ctx: dict[str, Any]) -> None:
        if database_url is not None:
            from app.db import init_db
            from app.rebate.figure_cache import RedisFigureCache
            from app.rebate.figures import use_figure_cache

            await init_db(database_url)
            # A worker process of its own keeps the API's cached block sums current (Redis)
            # instead of a copy in its own memory that nobody reads.
            use_figure_cache(RedisFigureCache(ctx["redis"]))
        ctx["gateway"] = gateway
        ctx["clock"] = clock
        # A worker that died mid-job lost nothing: what is due is settled now.
        now = clock()
        settled = await settle_backlog(now)
        cleared = await apply_due_resets(now)
        # After a restart of Redis too, the API's readers find the block sums cached.
        await warm_figure_caches()
        log.info(
            "worker started: settled %s orders and cleared %s entries left due", settled, cleared
        )
        if database_url is not None:
            # A worker process of its own: what it holds from now on stays.
            prepare_collector()
        ctx["ready"] = True

    async def shutdown(ctx: dict[str, Any]) -> None:
        if database_url is not None:
            from app.db import close_db

            await close_db()

    return {
        "poll_delay": POLL_DELAY,
        "functions": [func(settle_job, name="settle", max_tries=10)],
        "cron_jobs": (
            [cron(sweep_job, second=set(range(0, 60, 5)), unique=True, timeout=120)]
            if timers
            else []
        ),
        "queue_name": QUEUE_NAME,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "health_check_interval": 10,
        "health_check_key": HEALTH_CHECK_KEY,
        "keep_result": 60,
        "max_jobs": 20,
    }
