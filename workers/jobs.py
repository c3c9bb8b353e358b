"""The background work of the product, the same whether run by arq workers or in the server.

Every job is safe to run twice, concurrently or after a crash: what it changes is guarded by the
database (order locks, unique keys), never by the job queue.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from app.config import get_settings
from app.enums import OrderStatus
from app.orders.models import Order
from app.orders.service import record_payment
from app.rebate.actions import reset_queues
from app.rebate.models import ResetRun
from app.rebate.schedule import instant_key, reset_instants
from app.rebate.service import settle_due_orders
from app.rebate.settings import load_rebate_settings
from app.wechat.client import WeChatGateway
from app.wechat.pay_notify import PaymentNotice, parse_time_end

log = logging.getLogger("rebate.jobs")

UNPAID_CHECK_AFTER = timedelta(minutes=2)
UNPAID_GIVE_UP_AFTER = timedelta(hours=3)  # WeChat's prepay_id lives two hours


async def settle_pending(now: datetime, *, limit: int | None = None) -> int:
    """Settle one batch of due orders, oldest payment first, in one transaction.

    Orders another worker holds are skipped rather than waited for, so workers share the backlog.
    """
    size = limit or get_settings().settle_batch_size
    return len(await settle_due_orders(now=now, limit=size))


async def settle_backlog(now: datetime) -> int:
    """Settle every due order (at a worker's start, in the sweep), batch after batch."""
    total = 0
    while True:
        settled = await settle_pending(now)
        total += settled
        if settled == 0:
            return total


async def apply_due_resets(now: datetime, *, tz: ZoneInfo | None = None) -> int:
    """Apply each scheduled reset instant up to `now` exactly once, missed ones included (§10)."""
    settings = await load_rebate_settings()
    config = settings.reset
    if not config.enabled:
        return 0
    last = (
        await ResetRun.filter(instant_key__startswith="schedule:", scheduled_for__isnull=False)
        .order_by("-scheduled_for")
        .first()
    )
    after = (
        max(moment for moment in (config.since, last.scheduled_for if last else None) if moment)
        if (config.since or last)
        else now
    )
    cleared = 0
    zone = tz or get_settings().timezone
    for instant in reset_instants(config, zone, after=after, until=now):
        cleared += await reset_queues(instant_key(instant), now=now, scheduled_for=instant)
    return cleared


async def reconcile_unpaid(gateway: WeChatGateway, now: datetime, *, limit: int = 100) -> int:
    """Ask WeChat about orders whose payment notification never came (pay/orderquery)."""
    stale = await (
        Order.filter(
            status=OrderStatus.PENDING_PAYMENT,
            prepay_id__isnull=False,
            created_at__lte=now - UNPAID_CHECK_AFTER,
            created_at__gte=now - UNPAID_GIVE_UP_AFTER,
        )
        .order_by("id")
        .limit(limit)
    )
    paid = 0
    for order in stale:
        try:
            answer = await gateway.order_query(order.out_trade_no)
        except Exception as exc:  # one order's trouble must not stop the others
            log.warning("order query of %s failed: %s", order.out_trade_no, exc)
            continue
        if answer.get("trade_state") != "SUCCESS":
            continue
        notice = PaymentNotice(
            out_trade_no=answer["out_trade_no"],
            transaction_id=answer["transaction_id"],
            total_fee=int(answer["total_fee"]),
            cash_fee=int(answer.get("cash_fee") or answer["total_fee"]),
            appid=answer.get("appid", ""),
            mch_id=answer.get("mch_id", ""),
            openid=answer.get("openid", ""),
            time_end=parse_time_end(answer["time_end"]),
            raw=dict(answer),
        )
        outcome = await record_payment(notice)
        if outcome.newly_paid:
            paid += 1
    return paid


async def unsettled_count() -> int:
    async with in_transaction() as conn:
        return await (
            Order.filter(settled=False, status__in=[OrderStatus.PAID, OrderStatus.COMPLETED])
            .using_db(conn)
            .count()
        )
