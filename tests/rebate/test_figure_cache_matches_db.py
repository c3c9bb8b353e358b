"""After random settlements, exchanges, refunds, completions and resets, the cached figures give
exactly what a scan of the database gives (SPEC §12): position and amount ahead of every entry;
and the answers kept under a queue's version never outlive a change."""

from __future__ import annotations

import contextlib
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tortoise.functions import Count, Sum

from app.enums import EntryStatus, ExchangeTarget, RewardOrder
from app.errors import Conflict
from app.orders.service import complete_order
from app.rebate import figures
from app.rebate.actions import exchange_entry, refund_order, reset_queues
from app.rebate.models import QueueEntry
from app.rebate.progress import entry_views, list_entries
from app.rebate.service import settle_orders
from app.rebate.settings import load_rebate_settings, update_rebate_settings
from tests.support.orders import NOW, paid_orders

step = st.one_of(
    st.tuples(st.just("buy"), st.integers(min_value=1, max_value=6)),
    st.tuples(st.just("exchange"), st.integers(min_value=0, max_value=10**6)),
    st.tuples(st.just("refund"), st.integers(min_value=0, max_value=10**6)),
    st.tuples(st.just("complete"), st.integers(min_value=0, max_value=10**6)),
    st.tuples(st.just("reset"), st.just(0)),
    st.tuples(st.just("rule"), st.booleans()),
)


async def _scan(entry: QueueEntry, rule: RewardOrder) -> tuple[int, int]:
    query = QueueEntry.filter(
        queue_id=entry.queue_id, status=EntryStatus.WAITING, number__lt=entry.number
    )
    if rule == RewardOrder.COMPLETED_FIRST:
        query = query.filter(order_completed=True)
    row = (
        await query.annotate(n=Count("id"), e=Sum("entitlement_fen"), r=Sum("rewarded_fen")).values(
            "n", "e", "r"
        )
    )[0]
    return int(row["n"] or 0), int(row["e"] or 0) - int(row["r"] or 0)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(step, min_size=1, max_size=12), st.integers(min_value=0, max_value=2**16))
async def test_cached_progress_equals_a_scan(live_server, steps, seed):
    await live_server.wipe()
    rng = random.Random(seed)
    orders: list[int] = []
    rule = RewardOrder.QUEUE_ORDER
    for index, (kind, value) in enumerate(steps):
        waiting = await QueueEntry.filter(status=EntryStatus.WAITING).order_by("id")
        if kind == "buy":
            ids = await paid_orders(
                value, price_fen=rng.choice([100, 300, 16800]), prefix=f"c{index}"
            )
            await settle_orders(ids, now=NOW)
            orders += ids
        elif kind == "exchange" and waiting:
            entry = waiting[value % len(waiting)]
            await exchange_entry(entry.id, ExchangeTarget.POINTS, user_id=None, now=NOW)
        elif kind == "refund" and orders:
            # Refunded already: a CONFLICT that changes nothing.
            with contextlib.suppress(Conflict):
                await refund_order(orders[value % len(orders)], reason=None, now=NOW)
        elif kind == "complete" and orders:
            with contextlib.suppress(Conflict):
                await complete_order(orders[value % len(orders)], now=NOW)
        elif kind == "reset":
            await reset_queues(f"test:{index}:{seed}", now=NOW)
        elif kind == "rule":
            rule = RewardOrder.COMPLETED_FIRST if value else RewardOrder.QUEUE_ORDER
            await update_rebate_settings({"reward_order": rule.value}, now=NOW)
        # First the screens, while the answers kept before this step are still at hand.
        await _screens_match_a_fresh_reading(rule)
        # Read progress of every waiting entry as it comes (a stale cache: the database, or a
        # reload), then again once the timer has loaded the cache: from the cache.
        for warm in (False, True):
            if warm:
                await figures.warm_figure_caches()
            for entry in await QueueEntry.filter(status=EntryStatus.WAITING):
                assert await figures.ahead_of(entry.queue_id, entry.number, rule) == await _scan(
                    entry, rule
                )


async def _screens_match_a_fresh_reading(rule: RewardOrder) -> None:
    """Every consumer's page as the screen reads it (answers kept from the states before this
    step may be at hand) equals the page read with nothing kept, and a scan."""
    current = await load_rebate_settings()
    users = await QueueEntry.all().distinct().values_list("user_id", flat=True)
    for user_id in users:
        rows = await list_entries(user_id, status=None, before_id=None, limit=100)
        kept = await entry_views(rows, current, now=NOW)
        figures.forget_answers()
        fresh = await entry_views(rows, current, now=NOW)
        assert kept == fresh
        for view in kept:
            if view.entry.status == EntryStatus.WAITING:
                count, fen = await _scan(view.entry, rule)
                assert (view.position, view.amount_ahead_fen) == (count + 1, fen)


async def test_with_readers_not_loading_the_cache_the_timer_does(server):
    from app.rebate.figure_cache import InMemoryFigureCache

    saved = (figures._cache, figures._readers_load)
    cache = InMemoryFigureCache()
    figures.use_figure_cache(cache, readers_load=False)
    try:
        await settle_orders(await paid_orders(5), now=NOW)
        last = await QueueEntry.filter(status=EntryStatus.WAITING).order_by("-number").first()
        rule = RewardOrder.QUEUE_ORDER
        assert await figures.ahead_of(last.queue_id, last.number, rule) == await _scan(last, rule)
        assert await cache.prefix_any(last.queue_id, 0) is None  # the reader loaded nothing
        assert await figures.warm_figure_caches() == 1
        assert await figures.warm_figure_caches() == 0  # current now: nothing to load
        assert await figures.ahead_of(last.queue_id, last.number, rule) == await _scan(last, rule)
    finally:
        figures.use_figure_cache(saved[0], readers_load=saved[1])
