"""The database settlement and the pure reference model agree on every amount (SPEC §4, §7).

Hypothesis draws sequences of orders (one to three lines of random prices, extraction and reward
ratios), pauses, switches of the payout rule and completions; each sequence is played through the
services on the configured database (SQLite, or PostgreSQL in CI) and through `QueueBook`, then
every entry's rewarded amount and status, and what was returned, must match.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.catalog.service import upsert_product
from app.enums import EntryStatus, RewardOrder
from app.ledger.audit import audit
from app.members.service import login_with_openid
from app.orders.service import LineRequest, complete_order, create_order
from app.rebate.engine import LineIn, QueueBook
from app.rebate.models import Queue, QueueEntry
from app.rebate.service import settle_order
from app.rebate.settings import update_rebate_settings
from tests.support.orders import pay

line = st.tuples(
    st.integers(min_value=1, max_value=40_000),  # price
    st.integers(min_value=0, max_value=10_000),  # extraction bp
    st.integers(min_value=0, max_value=20_000),  # reward bp
)
step = st.one_of(
    st.tuples(st.just("order"), st.lists(line, min_size=1, max_size=3)),
    st.tuples(st.just("pause"), st.booleans()),
    st.tuples(st.just("completed_first"), st.booleans()),
    st.tuples(st.just("complete"), st.integers(min_value=0, max_value=30)),
)

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


async def _pay(order, index: int) -> None:
    await pay(order, f"42{index:010d}")


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(step, min_size=1, max_size=14))
async def test_settlement_matches_the_reference_model(live_server, steps):
    await live_server.wipe()
    await update_rebate_settings({"mall_queue": True})
    book = QueueBook()
    db_orders: list[int] = []
    entry_of_order: dict[int, list[int]] = {}  # db order id → book entry ids
    book_entries_seen = 0
    for index, (kind, value) in enumerate(steps):
        if kind == "pause":
            await update_rebate_settings({"paused": value})
            book.paused = value
        elif kind == "completed_first":
            rule = RewardOrder.COMPLETED_FIRST if value else RewardOrder.QUEUE_ORDER
            await update_rebate_settings({"reward_order": rule.value})
            book.reward_order = rule
        elif kind == "complete":
            if not db_orders:
                continue
            order_id = db_orders[value % len(db_orders)]
            try:
                await complete_order(order_id, now=NOW)
            except Exception:
                continue  # completed already: a CONFLICT, nothing changes
            for book_id in entry_of_order.get(order_id, []):
                book.entries[book_id - 1].order_completed = True
        else:
            user = await login_with_openid(f"buyer-{index}", "session")
            products = [
                await upsert_product(
                    {
                        "name": f"p{index}-{n}",
                        "price_fen": price,
                        "rebate": {
                            "enabled": True,
                            "extraction_ratio_bp": extraction,
                            "ratio_bp": reward,
                        },
                    }
                )
                for n, (price, extraction, reward) in enumerate(value)
            ]
            order = await create_order(user.id, [LineRequest(p.id, 1) for p in products], now=NOW)
            await _pay(order, index)
            assert await settle_order(order.id, now=NOW)
            db_orders.append(order.id)
            joined = book.settle(
                str(order.id),
                str(user.id),
                [LineIn(price, ext, ratio) for price, ext, ratio in value],
            )
            entry_of_order[order.id] = [e.entry_id for e in joined]
            book_entries_seen += len(joined)
    rows = (
        await QueueEntry.all()
        .order_by("number")
        .values("number", "rewarded_fen", "status", "entitlement_fen")
    )
    assert len(rows) == len(book.entries) == book_entries_seen
    for row, expected in zip(rows, book.entries, strict=True):
        assert row["number"] == expected.number
        assert row["entitlement_fen"] == expected.entitlement_fen
        assert row["rewarded_fen"] == expected.rewarded_fen
        assert EntryStatus(row["status"]) == expected.status
    queue = await Queue.filter(key="mall").first()
    if queue is not None:
        assert queue.returned_fen == book.returned_fen
        assert queue.contributed_fen == book.contributed_fen
        assert queue.liability_fen == sum(e.remaining_fen for e in book.entries)
        assert queue.waiting_count == sum(
            1 for e in book.entries if e.status == EntryStatus.WAITING
        )
    assert await audit() == []
