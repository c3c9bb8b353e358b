"""Settlement of orders into their queues: loads state under the queues' locks, asks the engine,
writes entries, contributions, payouts and their ledger postings in one database transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.catalog.models import Product, Store
from app.catalog.service import product_rule, store_cashier_rule, store_goods_rule
from app.config import get_settings
from app.enums import DeductionMode, EntryStatus, OrderKind, OrderStatus, RewardOrder, SettleOn
from app.ledger.service import PLATFORM_RETURNED, PLATFORM_SALES, post, user_cash
from app.members.models import User
from app.orders.models import Order, OrderLine
from app.rebate import engine, rules
from app.rebate.models import Contribution, Payout, Queue, QueueEntry
from app.rebate.settings import RebateRule, RebateSettings, load_rebate_settings


def settlement_due(order: Order, settings: RebateSettings) -> bool:
    """Is `order` at its settlement event (SPEC §4)? Cashier payments are complete when paid."""
    if order.settled:
        return False
    if order.status == OrderStatus.COMPLETED:
        return True
    return order.status == OrderStatus.PAID and settings.settle_on == SettleOn.PAID


@dataclass(slots=True)
class LinePlan:
    line: OrderLine
    queue_key: str
    contribution_fen: int
    joins: bool
    ratio: rules.RatioChoice | None = None


@dataclass(slots=True)
class _Waiting:
    entry_id: int
    number: int
    user_id: int
    entitlement_fen: int
    rewarded_fen: int

    @property
    def remaining_fen(self) -> int:
        return self.entitlement_fen - self.rewarded_fen


@dataclass(slots=True)
class QueueCursor:
    """The head of one locked queue, read lazily in payout order and kept current in memory."""

    queue: Queue
    reward_order: RewardOrder
    conn: BaseDBAsyncClient
    loaded: list[_Waiting] = field(default_factory=list)
    last_number: int = 0
    exhausted: bool = False
    touched: dict[int, _Waiting] = field(default_factory=dict)

    async def _load_more(self) -> None:
        query = QueueEntry.filter(
            queue_id=self.queue.id, status=EntryStatus.WAITING, number__gt=self.last_number
        )
        if self.reward_order == RewardOrder.COMPLETED_FIRST:
            query = query.filter(order_completed=True)
        rows = await (
            query.using_db(self.conn)
            .order_by("number")
            .limit(128)
            .values_list("id", "number", "user_id", "entitlement_fen", "rewarded_fen")
        )
        if len(rows) < 128:
            self.exhausted = True
        for entry_id, number, user_id, entitled, rewarded in rows:
            self.loaded.append(_Waiting(entry_id, number, user_id, entitled, rewarded))
            self.last_number = number

    async def candidates_for(self, amount_fen: int) -> list[engine.Candidate]:
        """Enough waiting entries, from the head, to absorb `amount_fen` (or all of them)."""
        self.loaded = [w for w in self.loaded if w.remaining_fen > 0]
        while not self.exhausted and sum(w.remaining_fen for w in self.loaded) < amount_fen:
            await self._load_more()
        return [engine.Candidate(w.entry_id, w.remaining_fen) for w in self.loaded]

    def apply(self, payouts: tuple[tuple[int, int], ...]) -> list[tuple[_Waiting, int]]:
        by_id = {w.entry_id: w for w in self.loaded}
        applied = []
        for entry_id, amount in payouts:
            waiting = by_id[entry_id]
            waiting.rewarded_fen += amount
            self.touched[entry_id] = waiting
            applied.append((waiting, amount))
        return applied


async def _plan_lines(
    order: Order, lines: list[OrderLine], settings: RebateSettings, conn: BaseDBAsyncClient
) -> list[LinePlan]:
    """What each rebate-enabled line contributes and whether it joins, read at the event (§4–§6)."""
    products = {
        p.id: p
        for p in await Product.filter(
            id__in=[ln.product_id for ln in lines if ln.product_id]
        ).using_db(conn)
    }
    store = await Store.filter(id=order.store_id).using_db(conn).first() if order.store_id else None
    buyer = await User.filter(id=order.user_id).using_db(conn).first()
    paid_local = (order.paid_at or order.created_at).astimezone(_tz())
    used_deduction = order.points_used > 0 or order.love_value_used > 0
    plans: list[LinePlan] = []
    for line in lines:
        scopes: list[RebateRule]
        if order.kind == OrderKind.CASHIER:
            if store is None:
                continue
            scopes = [store_cashier_rule(store)]
            enabled = scopes[0].enabled
        else:
            product = products.get(line.product_id) if line.product_id else None
            if product is None:
                continue
            scopes = [product_rule(product)]
            if order.kind == OrderKind.STORE_GOODS:
                if store is None:
                    continue
                scopes.append(store_goods_rule(store))
            enabled = all(rule.enabled for rule in scopes)
        if not enabled:
            continue
        key = rules.queue_key_for(
            order.kind, product_id=line.product_id, store_id=order.store_id, settings=settings
        )
        extraction_bp = rules.resolve_extraction(scopes, settings)
        windows = next((rule.reward_windows for rule in scopes if rule.reward_windows), [])
        joins = rules.in_reward_windows(windows, paid_local.time())
        if used_deduction and settings.deduction_mode == DeductionMode.NOT_PARTICIPATE:
            joins = False
        ratio = (
            rules.resolve_reward_ratio(
                scopes, settings, member_level_id=buyer.member_level_id if buyer else None
            )
            if joins
            else None
        )
        plans.append(
            LinePlan(line, key, engine.contribution(line.paid_fen, extraction_bp), joins, ratio)
        )
    return plans


def _tz() -> ZoneInfo:
    return get_settings().timezone


async def lock_queues(keys: list[str], conn: BaseDBAsyncClient) -> dict[str, Queue]:
    """Create missing queues and lock them, in key order so that two settlements cannot deadlock."""
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    await Queue.bulk_create(
        [Queue(key=key) for key in ordered], ignore_conflicts=True, using_db=conn
    )
    locked: dict[str, Queue] = {}
    for key in ordered:
        queue = await Queue.filter(key=key).using_db(conn).select_for_update().get()
        locked[key] = queue
    return locked


async def settle_order(order_id: int, *, now: datetime) -> bool:
    """Apply the settlement event of one order at most once; False when nothing was due."""
    async with in_transaction() as conn:
        order = await Order.filter(id=order_id).using_db(conn).select_for_update().first()
        if order is None:
            return False
        settings = await load_rebate_settings(conn)
        if not settlement_due(order, settings):
            return False
        lines = await OrderLine.filter(order_id=order.id).using_db(conn).order_by("line_no")
        if settings.enabled:
            plans = await _plan_lines(order, lines, settings, conn)
            queues = await lock_queues([plan.queue_key for plan in plans], conn)
            await _apply_plans(order, plans, queues, settings, conn, now=now)
        order.settled = True
        order.settled_at = now
        await order.save(update_fields=["settled", "settled_at"], using_db=conn)
    return True


async def _apply_plans(
    order: Order,
    plans: list[LinePlan],
    queues: dict[str, Queue],
    settings: RebateSettings,
    conn: BaseDBAsyncClient,
    *,
    now: datetime,
) -> None:
    cursors = {
        key: QueueCursor(queue, settings.reward_order, conn) for key, queue in queues.items()
    }
    # 1. Contributions of every line are distributed before any of the order's entries join.
    for plan in plans:
        cursor = cursors[plan.queue_key]
        queue = cursor.queue
        candidates = [] if settings.paused else await cursor.candidates_for(plan.contribution_fen)
        result = engine.distribute(plan.contribution_fen, candidates, paused=settings.paused)
        applied = cursor.apply(result.payouts)
        contribution = await Contribution.create(
            queue_id=queue.id,
            order_id=order.id,
            line_id=plan.line.id,
            amount_fen=plan.contribution_fen,
            paid_out_fen=result.paid_out_fen,
            returned_fen=result.returned_fen,
            paused=settings.paused,
            reward_order=settings.reward_order,
            using_db=conn,
        )
        if applied:
            await Payout.bulk_create(
                [
                    Payout(
                        contribution_id=contribution.id,
                        entry_id=waiting.entry_id,
                        from_order_id=order.id,
                        amount_fen=amount,
                    )
                    for waiting, amount in applied
                ],
                using_db=conn,
            )
        postings = [
            (PLATFORM_SALES, -plan.contribution_fen),
            (PLATFORM_RETURNED, result.returned_fen),
        ]
        postings += [(user_cash(waiting.user_id), amount) for waiting, amount in applied]
        await post(f"contribution:{plan.line.id}", "rebate_contribution", postings, conn)
        queue.contributed_fen += plan.contribution_fen
        queue.paid_out_fen += result.paid_out_fen
        queue.returned_fen += result.returned_fen
        queue.liability_fen -= result.paid_out_fen
        plan.line.queue_key = plan.queue_key
    for cursor in cursors.values():
        for waiting in cursor.touched.values():
            done = waiting.remaining_fen == 0
            await (
                QueueEntry.filter(id=waiting.entry_id)
                .using_db(conn)
                .update(
                    rewarded_fen=waiting.rewarded_fen,
                    **({"status": EntryStatus.COMPLETED, "ended_at": now} if done else {}),
                )
            )
            if done:
                cursor.queue.waiting_count -= 1
    # 2. Then the order's eligible lines join at the back, in the order of its lines.
    completed = order.status == OrderStatus.COMPLETED
    for plan in plans:
        if not plan.joins or plan.ratio is None:
            continue
        queue = queues[plan.queue_key]
        entitled = engine.entitlement(plan.line.paid_fen, plan.ratio.ratio_bp)
        waiting = entitled > 0
        await QueueEntry.create(
            queue_id=queue.id,
            queue_key=queue.key,
            number=queue.next_number,
            order_id=order.id,
            line_id=plan.line.id,
            user_id=order.user_id,
            status=EntryStatus.WAITING if waiting else EntryStatus.COMPLETED,
            paid_fen=plan.line.paid_fen,
            ratio_bp=plan.ratio.ratio_bp,
            ratio_source=plan.ratio.source,
            entitlement_fen=entitled,
            order_completed=completed,
            lottery_config=plan.ratio.lottery.model_dump(mode="json")
            if plan.ratio.lottery
            else None,
            ended_at=None if waiting else now,
            using_db=conn,
        )
        queue.next_number += 1
        if waiting:
            queue.waiting_count += 1
            queue.liability_fen += entitled
    for plan in plans:
        await OrderLine.filter(id=plan.line.id).using_db(conn).update(queue_key=plan.queue_key)
    for queue in queues.values():
        await (
            Queue.filter(id=queue.id)
            .using_db(conn)
            .update(
                next_number=queue.next_number,
                waiting_count=queue.waiting_count,
                liability_fen=queue.liability_fen,
                contributed_fen=queue.contributed_fen,
                paid_out_fen=queue.paid_out_fen,
                returned_fen=queue.returned_fen,
            )
        )


async def mark_entries_completed(order_id: int, conn: BaseDBAsyncClient) -> None:
    """The order completed: its waiting entries become eligible under COMPLETED_FIRST."""
    await QueueEntry.filter(order_id=order_id).using_db(conn).update(order_completed=True)
