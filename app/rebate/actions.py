"""What changes an entry after it joined: the lottery draw, exchange, reset and refund (§8–§11)."""

from __future__ import annotations

import random
import secrets
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from app.distribution.service import cancel_for_order
from app.enums import EntryStatus, ExchangeTarget, LotteryMode, OrderStatus, RatioSource
from app.errors import Conflict, NotFound
from app.ledger.service import (
    EXTERNAL_WECHAT,
    PLATFORM_LOVE_VALUE,
    PLATFORM_POINTS,
    PLATFORM_SALES,
    post,
    user_love_value,
    user_love_value_frozen,
    user_points,
)
from app.money import apply_ratio
from app.notifications.models import NotificationEvent
from app.notifications.outbox import Outbox
from app.orders.models import Order
from app.orders.service import deduction_postings
from app.rebate import engine
from app.rebate.figures import FigureDeltas
from app.rebate.models import Queue, QueueBucket, QueueEntry, ResetRun
from app.rebate.settings import LotteryConfig, load_rebate_settings

_system_random = secrets.SystemRandom()


async def _locked_entry(entry_id: int, conn: BaseDBAsyncClient) -> tuple[QueueEntry, Queue]:
    """The entry and its queue, the queue locked first as settlement locks it."""
    found = await QueueEntry.filter(id=entry_id).using_db(conn).values_list("queue_id", flat=True)
    if not found:
        raise NotFound(f"entry {entry_id} not found")
    queue = await Queue.filter(id=found[0]).using_db(conn).select_for_update().get()
    entry = await QueueEntry.filter(id=entry_id).using_db(conn).select_for_update().get()
    return entry, queue


def draw_ratio(config: LotteryConfig, rng: random.Random) -> int:
    """One draw (SPEC §8): a FIXED ratio by weight (equal unless given), or a whole bp in RANGE."""
    if config.mode == LotteryMode.FIXED:
        assert config.ratios_bp
        weights = config.weights or [1] * len(config.ratios_bp)
        return rng.choices(config.ratios_bp, weights=weights, k=1)[0]
    assert config.min_bp is not None and config.max_bp is not None
    return rng.randint(config.min_bp, config.max_bp)


async def draw_lottery(
    entry_id: int, *, user_id: int | None, now: datetime, rng: random.Random | None = None
) -> QueueEntry:
    """Draw once, while waiting and before any payout; the drawn ratio replaces the entry's."""
    async with in_transaction() as conn:
        entry, queue = await _locked_entry(entry_id, conn)
        if user_id is not None and entry.user_id != user_id:
            raise NotFound(f"entry {entry_id} not found")
        if entry.lottery_config is None:
            raise Conflict("this entry has no right to draw")
        if entry.lottery_drawn:
            raise Conflict("this entry has drawn already")
        if entry.status != EntryStatus.WAITING:
            raise Conflict(f"only a waiting entry may draw; this one is {entry.status.value}")
        if entry.rewarded_fen > 0:
            raise Conflict("the draw is over once an entry has received a payout")
        drawn = draw_ratio(
            LotteryConfig.model_validate(entry.lottery_config), rng or _system_random
        )
        entitled = engine.entitlement(entry.paid_fen, drawn)
        queue.liability_fen += entitled - entry.entitlement_fen
        figures = FigureDeltas()
        figures.waiting(
            queue.id,
            entry.number,
            0 if entitled else -1,
            entitled - entry.entitlement_fen,
            completed=entry.order_completed,
        )
        entry.ratio_bp = drawn
        entry.entitlement_fen = entitled
        entry.ratio_source = RatioSource.LOTTERY_DRAWN
        entry.lottery_drawn = True
        changed = ["ratio_bp", "entitlement_fen", "ratio_source", "lottery_drawn"]
        if entitled == 0:
            # Like an entry whose entitlement rounds to 0 at joining: nothing to wait for.
            entry.status = EntryStatus.COMPLETED
            entry.ended_at = now
            changed += ["status", "ended_at"]
            queue.waiting_count -= 1
        await entry.save(update_fields=changed, using_db=conn)
        await queue.save(update_fields=["liability_fen", "waiting_count"], using_db=conn)
        await figures.flush(conn)
        outbox = Outbox(now)
        outbox.add(
            entry.user_id,
            NotificationEvent.LOTTERY_DRAWN,
            entryId=entry.id,
            queueKey=entry.queue_key,
            ratioBp=drawn,
            entitlementFen=entitled,
        )
        await outbox.flush(conn)
    return entry


async def exchange_entry(
    entry_id: int, target: ExchangeTarget, *, user_id: int | None, now: datetime
) -> QueueEntry:
    """Trade a waiting entry's remaining for points or love value (SPEC §9)."""
    async with in_transaction() as conn:
        entry, queue = await _locked_entry(entry_id, conn)
        if user_id is not None and entry.user_id != user_id:
            raise NotFound(f"entry {entry_id} not found")
        if entry.status != EntryStatus.WAITING:
            raise Conflict(
                f"only a waiting entry can be exchanged; this one is {entry.status.value}"
            )
        settings = await load_rebate_settings(conn)
        remaining = entry.entitlement_fen - entry.rewarded_fen
        if target == ExchangeTarget.POINTS:
            amount = apply_ratio(remaining, settings.points_exchange_ratio_bp)
            postings = [(user_points(entry.user_id), amount), (PLATFORM_POINTS, -amount)]
        else:
            amount = apply_ratio(remaining, settings.love_value_exchange_ratio_bp)
            account = (
                user_love_value_frozen(entry.user_id)
                if settings.love_value_frozen
                else user_love_value(entry.user_id)
            )
            postings = [(account, amount), (PLATFORM_LOVE_VALUE, -amount)]
        await post(f"exchange:{entry.id}", f"exchange_{target.value.lower()}", postings, conn)
        entry.status = EntryStatus.EXCHANGED
        entry.ended_at = now
        await entry.save(update_fields=["status", "ended_at"], using_db=conn)
        queue.waiting_count -= 1
        queue.liability_fen -= remaining
        await queue.save(update_fields=["waiting_count", "liability_fen"], using_db=conn)
        figures = FigureDeltas()
        figures.waiting(queue.id, entry.number, -1, -remaining, completed=entry.order_completed)
        await figures.flush(conn)
        outbox = Outbox(now)
        outbox.add(
            entry.user_id,
            NotificationEvent.EXCHANGED,
            entryId=entry.id,
            queueKey=entry.queue_key,
            target=target.value,
            amount=amount,
        )
        await outbox.flush(conn)
    return entry


async def reset_queues(
    instant_key: str, *, now: datetime, scheduled_for: datetime | None = None
) -> int:
    """Clear every waiting entry of every queue, once per instant key (SPEC §10).

    The instant's row is written first: a second worker applying the same instant waits on its
    unique key, then finds it taken and changes nothing.
    """
    try:
        async with in_transaction() as conn:
            run = await ResetRun.create(
                instant_key=instant_key, scheduled_for=scheduled_for, using_db=conn
            )
            cleared = forfeited = 0
            for queue in await Queue.all().using_db(conn).order_by("key").select_for_update():
                waiting = QueueEntry.filter(queue_id=queue.id, status=EntryStatus.WAITING)
                if not await waiting.using_db(conn).exists():
                    continue
                await _notify_cleared(queue, instant_key, now, conn)
                cleared += await waiting.using_db(conn).update(
                    status=EntryStatus.CLEARED, ended_at=now
                )
                forfeited += queue.liability_fen
                await (
                    Queue.filter(id=queue.id)
                    .using_db(conn)
                    # A new version: cached block sums of this queue are stale from now on.
                    .update(waiting_count=0, liability_fen=0, version=F("version") + 1)
                )
                await (
                    QueueBucket.filter(queue_id=queue.id)
                    .using_db(conn)
                    .update(waiting_count=0, waiting_fen=0, completed_count=0, completed_fen=0)
                )
            run.cleared, run.forfeited_fen = cleared, forfeited
            await run.save(update_fields=["cleared", "forfeited_fen"], using_db=conn)
    except IntegrityError:
        return 0
    return cleared


async def _notify_cleared(
    queue: Queue, instant_key: str, now: datetime, conn: BaseDBAsyncClient
) -> None:
    """One notification per cleared entry, read in pages so a long queue never sits in memory."""
    last = 0
    while True:
        page = await (
            QueueEntry.filter(queue_id=queue.id, status=EntryStatus.WAITING, number__gt=last)
            .using_db(conn)
            .order_by("number")
            .limit(5000)
            .values_list("id", "number", "user_id", "entitlement_fen", "rewarded_fen")
        )
        if not page:
            return
        outbox = Outbox(now)
        for entry_id, number, user_id, entitled, rewarded in page:
            outbox.add(
                user_id,
                NotificationEvent.CLEARED_BY_RESET,
                entryId=entry_id,
                queueKey=queue.key,
                forfeitedFen=entitled - rewarded,
                reset=instant_key,
            )
            last = number
        await outbox.flush(conn)


async def refund_order(order_id: int, *, reason: str | None, now: datetime) -> Order:
    """Refund a paid order (SPEC §11): waiting entries are cancelled, payouts they received stay,
    contributions stand, the cash goes back and the deductions return to the wallet."""
    async with in_transaction() as conn:
        order = await Order.filter(id=order_id).using_db(conn).select_for_update().first()
        if order is None:
            raise NotFound(f"order {order_id} not found")
        if order.status not in (OrderStatus.PAID, OrderStatus.COMPLETED):
            raise Conflict(
                f"order {order.id} is {order.status.value}; only a paid order is refunded"
            )
        entries = (
            await QueueEntry.filter(order_id=order.id)
            .using_db(conn)
            .values_list("queue_id", flat=True)
        )
        queues = {
            q.id: q
            for q in await Queue.filter(id__in=sorted(set(entries)))
            .using_db(conn)
            .order_by("key")
            .select_for_update()
        }
        figures = FigureDeltas()
        for entry in await QueueEntry.filter(
            order_id=order.id, status=EntryStatus.WAITING
        ).using_db(conn):
            queue = queues[entry.queue_id]
            queue.waiting_count -= 1
            remaining = entry.entitlement_fen - entry.rewarded_fen
            queue.liability_fen -= remaining
            figures.waiting(queue.id, entry.number, -1, -remaining, completed=entry.order_completed)
            entry.status = EntryStatus.CANCELLED
            entry.ended_at = now
            await entry.save(update_fields=["status", "ended_at"], using_db=conn)
        for queue in queues.values():
            await queue.save(update_fields=["waiting_count", "liability_fen"], using_db=conn)
        await figures.flush(conn)
        postings = deduction_postings(order, returned=True)
        if order.payable_fen and order.transaction_id:
            postings += [(PLATFORM_SALES, -order.payable_fen), (EXTERNAL_WECHAT, order.payable_fen)]
        if postings:
            await post(f"refund:{order.id}", "refund", postings, conn)
        # Commissions not yet available go back (SPEC §11, §14); available ones were earned.
        await cancel_for_order(order.id, conn, now=now)
        order.status = OrderStatus.REFUNDED
        order.refunded_at = now
        order.refund_reason = reason
        await order.save(update_fields=["status", "refunded_at", "refund_reason"], using_db=conn)
    return order
