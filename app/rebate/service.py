"""Settlement of orders into their queues (SPEC §4–§7): loads state under the queues' locks, asks
the pure rules and engine, and writes entries, contributions, payouts and their ledger postings in
one database transaction. Many orders can be settled in one transaction (`settle_orders`)."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from app.catalog.models import Product, Store
from app.catalog.service import product_rule, store_cashier_rule, store_goods_rule
from app.config import get_settings
from app.distribution.service import credit_line_commissions
from app.enums import (
    DeductionMode,
    EntryStatus,
    OrderKind,
    OrderStatus,
    RewardOrder,
    SettleOn,
)
from app.ledger.service import (
    PLATFORM_POINTS,
    PLATFORM_RETURNED,
    PLATFORM_SALES,
    post,
    user_cash,
    user_points,
)
from app.members.models import User
from app.money import apply_ratio
from app.notifications.models import NotificationEvent
from app.notifications.outbox import Outbox
from app.orders.models import Order, OrderLine
from app.rebate import engine, rules
from app.rebate.eligibility import LimitScope, SeatGroup, limit_scopes, random_return_for
from app.rebate.figures import FigureDeltas, publish
from app.rebate.models import Contribution, Payout, Queue, QueueEntry
from app.rebate.settings import RandomReturn, RebateRule, RebateSettings, load_rebate_settings

_system_random = secrets.SystemRandom()


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
    scopes: list[RebateRule]
    joins: bool
    ratio: rules.RatioChoice | None
    random_return: RandomReturn
    limits: tuple[LimitScope | None, LimitScope | None]


@dataclass(slots=True)
class _Waiting:
    entry_id: int
    number: int
    user_id: int
    entitlement_fen: int
    rewarded_fen: int
    order_completed: bool

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
    seats: SeatGroup = field(default_factory=SeatGroup)

    async def _load_more(self) -> None:
        query = QueueEntry.filter(
            queue_id=self.queue.id, status=EntryStatus.WAITING, number__gt=self.last_number
        )
        if self.reward_order == RewardOrder.COMPLETED_FIRST:
            query = query.filter(order_completed=True)
        rows = await (
            query.using_db(self.conn)
            .order_by("number")
            .limit(256)
            .values_list(
                "id", "number", "user_id", "entitlement_fen", "rewarded_fen", "order_completed"
            )
        )
        if len(rows) < 256:
            self.exhausted = True
        for entry_id, number, user_id, entitled, rewarded, completed in rows:
            self.loaded.append(_Waiting(entry_id, number, user_id, entitled, rewarded, completed))
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

    def joined(self, waiting: _Waiting, eligible: bool) -> None:
        """A new entry at the back: once the head is read to the end, keep it in memory too."""
        if self.exhausted and eligible:
            self.loaded.append(waiting)
            self.last_number = waiting.number


@dataclass(slots=True)
class Batch:
    """What one settlement transaction shares across its orders."""

    conn: BaseDBAsyncClient
    settings: RebateSettings
    now: datetime
    rng: random.Random
    cursors: dict[str, QueueCursor] = field(default_factory=dict)
    figures: FigureDeltas = field(default_factory=FigureDeltas)
    outbox: Outbox = field(init=False)

    def __post_init__(self) -> None:
        self.outbox = Outbox(self.now)

    @property
    def today(self):
        return self.now.astimezone(get_settings().timezone).date()


def _scopes_for(
    order: Order, line: OrderLine, product: Product | None, store: Store | None
) -> list[RebateRule] | None:
    """The line's scopes, most specific first, or None when the line is not rebate-enabled (§4)."""
    if order.kind == OrderKind.CASHIER:
        if store is None:
            return None
        scopes = [store_cashier_rule(store)]
    else:
        if product is None:
            return None
        scopes = [product_rule(product)]
        if order.kind == OrderKind.STORE_GOODS:
            if store is None:
                return None
            scopes.append(store_goods_rule(store))
    return scopes if all(rule.enabled for rule in scopes) else None


def _scope_setting(order: Order, store: Store | None) -> RandomReturn | None:
    if store is None:
        return None
    if order.kind == OrderKind.CASHIER:
        return store_cashier_rule(store).random_return
    if order.kind == OrderKind.STORE_GOODS:
        return store_goods_rule(store).random_return
    return None


async def _cumulative_sums(
    order: Order, scopes: list[RebateRule], batch: Batch
) -> dict[tuple[int, int], int]:
    """The buyer's completed, unrefunded spend over each tier's days (SPEC §5)."""
    sums: dict[tuple[int, int], int] = {}
    for index, rule in enumerate(scopes):
        for tier in rule.cumulative_tiers:
            query = Order.filter(
                user_id=order.user_id,
                status=OrderStatus.COMPLETED,
                completed_at__gte=batch.now - timedelta(days=tier.days),
                completed_at__lte=batch.now,
            ).exclude(id=order.id)
            if order.kind == OrderKind.MALL:
                query = query.filter(kind=OrderKind.MALL)
            else:
                query = query.filter(
                    kind__in=[OrderKind.STORE_GOODS, OrderKind.CASHIER], store_id=order.store_id
                )
            rows = (
                await query.using_db(batch.conn).annotate(total=Sum("payable_fen")).values("total")
            )
            sums[(index, tier.days)] = int(rows[0]["total"] or 0) if rows else 0
    return sums


async def _plan_order(order: Order, batch: Batch) -> list[LinePlan]:
    """What each rebate-enabled line contributes and how it may join, read at the event (§4–§6)."""
    conn, settings = batch.conn, batch.settings
    lines = await OrderLine.filter(order_id=order.id).using_db(conn).order_by("line_no")
    product_ids = [line.product_id for line in lines if line.product_id]
    products = {p.id: p for p in await Product.filter(id__in=product_ids).using_db(conn)}
    store = await Store.filter(id=order.store_id).using_db(conn).first() if order.store_id else None
    buyer = await User.filter(id=order.user_id).using_db(conn).first()
    paid_local = (order.paid_at or order.created_at).astimezone(get_settings().timezone)
    used_deduction = order.points_used > 0 or order.love_value_used > 0
    plans: list[LinePlan] = []
    for line in lines:
        product = products.get(line.product_id) if line.product_id else None
        scopes = _scopes_for(order, line, product, store)
        if scopes is None:
            continue
        key = rules.queue_key_for(
            order.kind, product_id=line.product_id, store_id=order.store_id, settings=settings
        )
        if key.startswith("product:") and product is not None and not product.listed:
            continue  # a delisted product's queue gets no more contributions (SPEC §3)
        windows = next((rule.reward_windows for rule in scopes if rule.reward_windows), [])
        joins = rules.in_reward_windows(windows, paid_local.time())
        if used_deduction and settings.deduction_mode == DeductionMode.NOT_PARTICIPATE:
            joins = False
        ratio = None
        if joins:
            ratio = rules.resolve_reward_ratio(
                scopes,
                settings,
                member_level_id=buyer.member_level_id if buyer else None,
                cumulative_sums=await _cumulative_sums(order, scopes, batch),
            )
        plans.append(
            LinePlan(
                line=line,
                queue_key=key,
                contribution_fen=engine.contribution(
                    line.paid_fen, rules.resolve_extraction(scopes, settings)
                ),
                scopes=scopes,
                joins=joins,
                ratio=ratio,
                random_return=random_return_for(
                    key, _scope_setting(order, store), settings.random_return
                ),
                limits=limit_scopes(scopes),
            )
        )
    return plans


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
        locked[key] = await Queue.filter(key=key).using_db(conn).select_for_update().get()
    return locked


async def settle_order(order_id: int, *, now: datetime, rng: random.Random | None = None) -> bool:
    """Apply the settlement event of one order at most once; False when nothing was due."""
    return bool(await settle_orders([order_id], now=now, rng=rng))


async def settle_orders(
    order_ids: list[int], *, now: datetime, rng: random.Random | None = None
) -> list[int]:
    """Settle every order of `order_ids` that is due, in payment order, in one transaction.

    Orders are locked before queues, each in a fixed order, so concurrent batches cannot deadlock;
    a queue's lock makes its distribution serial (SPEC §7). Returns the orders settled.
    """
    if not order_ids:
        return []
    async with in_transaction() as conn:
        locked = (
            await Order.filter(id__in=sorted(set(order_ids)))
            .using_db(conn)
            .order_by("id")
            .select_for_update()
        )
        settled, figures = await _settle_locked(locked, conn, now=now, rng=rng)
    await publish(figures)
    return settled


async def settle_due_orders(
    *, now: datetime, limit: int, rng: random.Random | None = None
) -> list[int]:
    """Claim up to `limit` due orders that no other worker holds, oldest payment first, and
    settle them in one transaction: any number of workers share a backlog without waiting."""
    async with in_transaction() as conn:
        settings = await load_rebate_settings(conn)
        statuses = [OrderStatus.COMPLETED]
        if settings.settle_on == SettleOn.PAID:
            statuses.append(OrderStatus.PAID)
        claimed = (
            await Order.filter(settled=False, status__in=statuses)
            .using_db(conn)
            .order_by("paid_at", "id")
            .limit(limit)
            .select_for_update(skip_locked=True)
        )
        settled, figures = await _settle_locked(claimed, conn, now=now, rng=rng, settings=settings)
    await publish(figures)
    return settled


async def _settle_locked(
    locked: list[Order],
    conn: BaseDBAsyncClient,
    *,
    now: datetime,
    rng: random.Random | None,
    settings: RebateSettings | None = None,
) -> tuple[list[int], FigureDeltas]:
    """Settle the due ones of `locked`; returns them, and the figures to publish after commit."""
    settings = settings or await load_rebate_settings(conn)
    due = sorted(
        (order for order in locked if settlement_due(order, settings)),
        key=lambda o: (o.paid_at or o.created_at, o.id),
    )
    batch = Batch(conn, settings, now, rng or _system_random)
    if not due:
        return [], batch.figures
    if settings.enabled:
        planned = [(order, await _plan_order(order, batch)) for order in due]
        keys = [plan.queue_key for _, plans in planned for plan in plans]
        for key, queue in (await lock_queues(keys, conn)).items():
            cursor = QueueCursor(queue, settings.reward_order, conn)
            cursor.seats = SeatGroup(
                queue.rr_group_size,
                queue.rr_points_seats,
                queue.rr_seats_left,
                queue.rr_points_left,
            )
            batch.cursors[key] = cursor
        for order, plans in planned:
            await _settle_one(order, plans, batch)
        await _write_back(batch)
    # Commissions are credited at the settlement event, whether or not the rebate plugin is on.
    for order in due:
        lines = await OrderLine.filter(order_id=order.id).using_db(conn).order_by("line_no")
        await credit_line_commissions(order, lines, conn, now=now, outbox=batch.outbox)
    await batch.outbox.flush(conn)
    await (
        Order.filter(id__in=[o.id for o in due]).using_db(conn).update(settled=True, settled_at=now)
    )
    return [order.id for order in due], batch.figures


async def _settle_one(order: Order, plans: list[LinePlan], batch: Batch) -> None:
    conn, settings = batch.conn, batch.settings
    # 1. Contributions of every line are distributed before any of the order's entries join.
    for plan in plans:
        cursor = batch.cursors[plan.queue_key]
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
            created_at=batch.now,
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
                        created_at=batch.now,
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
        for waiting, amount in applied:
            done = waiting.remaining_fen == 0
            batch.outbox.add(
                waiting.user_id,
                NotificationEvent.PAYOUT_RECEIVED,
                entryId=waiting.entry_id,
                queueKey=queue.key,
                amountFen=amount,
                fromOrderId=order.id,
            )
            if done:
                queue.waiting_count -= 1
                batch.outbox.add(
                    waiting.user_id,
                    NotificationEvent.ENTRY_COMPLETED,
                    entryId=waiting.entry_id,
                    queueKey=queue.key,
                    entitlementFen=waiting.entitlement_fen,
                )
            batch.figures.waiting(
                queue.id,
                waiting.number,
                -1 if done else 0,
                -amount,
                completed=waiting.order_completed,
            )
        batch.figures.money(
            queue.id, batch.today, plan.contribution_fen, result.paid_out_fen, result.returned_fen
        )
    # 2. Then the order's eligible lines join at the back, in the order of its lines.
    paid_day = (order.paid_at or order.created_at).astimezone(get_settings().timezone).date()
    for plan in plans:
        await OrderLine.filter(id=plan.line.id).using_db(conn).update(queue_key=plan.queue_key)
        if (
            plan.joins
            and plan.ratio is not None
            and await _within_limits(order, plan, paid_day, conn)
        ):
            await _join(order, plan, paid_day, batch)


async def _within_limits(order: Order, plan: LinePlan, paid_day, conn: BaseDBAsyncClient) -> bool:
    per_day, total = plan.limits
    for limit, day in ((per_day, paid_day), (total, None)):
        if limit is None:
            continue
        query = QueueEntry.filter(user_id=order.user_id).exclude(status=EntryStatus.CANCELLED)
        query = query.filter(**_scope_filter(order, plan, limit.scope))
        if day is not None:
            query = query.filter(paid_day=day)
        if await query.using_db(conn).count() >= limit.limit:
            return False
    return True


def _scope_filter(order: Order, plan: LinePlan, scope: int) -> dict[str, object]:
    """Entries earned in one of a line's scopes: its product's, its store's goods, its cashier."""
    if order.kind == OrderKind.CASHIER:
        return {"store_id": order.store_id, "order_kind": OrderKind.CASHIER}
    if scope == 0:
        return {"product_id": plan.line.product_id}
    return {"store_id": order.store_id, "order_kind": OrderKind.STORE_GOODS}


async def _join(order: Order, plan: LinePlan, paid_day, batch: Batch) -> None:
    assert plan.ratio is not None
    cursor = batch.cursors[plan.queue_key]
    queue = cursor.queue
    entitled = engine.entitlement(plan.line.paid_fen, plan.ratio.ratio_bp)
    converts = plan.random_return.enabled and cursor.seats.draw(plan.random_return, batch.rng)
    if converts:
        status = EntryStatus.CONVERTED
    elif entitled == 0:
        status = EntryStatus.COMPLETED
    else:
        status = EntryStatus.WAITING
    completed = order.status == OrderStatus.COMPLETED
    entry = await QueueEntry.create(
        queue_id=queue.id,
        queue_key=queue.key,
        number=queue.next_number,
        order_id=order.id,
        line_id=plan.line.id,
        user_id=order.user_id,
        product_id=plan.line.product_id,
        store_id=order.store_id,
        order_kind=order.kind,
        paid_day=paid_day,
        status=status,
        paid_fen=plan.line.paid_fen,
        ratio_bp=plan.ratio.ratio_bp,
        ratio_source=plan.ratio.source,
        entitlement_fen=entitled,
        order_completed=completed,
        lottery_config=plan.ratio.lottery.model_dump(mode="json") if plan.ratio.lottery else None,
        created_at=batch.now,
        ended_at=None if status == EntryStatus.WAITING else batch.now,
        using_db=batch.conn,
    )
    queue.next_number += 1
    batch.outbox.add(
        order.user_id,
        NotificationEvent.ENTRY_JOINED,
        entryId=entry.id,
        queueKey=queue.key,
        number=entry.number,
        entitlementFen=entitled,
        status=status.value,
    )
    if status == EntryStatus.WAITING:
        queue.waiting_count += 1
        queue.liability_fen += entitled
        batch.figures.waiting(queue.id, entry.number, 1, entitled, completed=completed)
        eligible = completed or batch.settings.reward_order == RewardOrder.QUEUE_ORDER
        cursor.joined(
            _Waiting(entry.id, entry.number, order.user_id, entitled, 0, completed), eligible
        )
    if converts:
        points = apply_ratio(entitled, batch.settings.points_exchange_ratio_bp)
        await post(
            f"convert:{entry.id}",
            "random_return_points",
            [(user_points(order.user_id), points), (PLATFORM_POINTS, -points)],
            batch.conn,
        )


async def _write_back(batch: Batch) -> None:
    await batch.figures.flush(batch.conn)
    await batch.outbox.flush(batch.conn)
    for cursor in batch.cursors.values():
        for waiting in cursor.touched.values():
            done = waiting.remaining_fen == 0
            await (
                QueueEntry.filter(id=waiting.entry_id)
                .using_db(batch.conn)
                .update(
                    rewarded_fen=waiting.rewarded_fen,
                    **({"status": EntryStatus.COMPLETED, "ended_at": batch.now} if done else {}),
                )
            )
        queue = cursor.queue
        seats = cursor.seats
        await (
            Queue.filter(id=queue.id)
            .using_db(batch.conn)
            .update(
                next_number=queue.next_number,
                waiting_count=queue.waiting_count,
                liability_fen=queue.liability_fen,
                contributed_fen=queue.contributed_fen,
                paid_out_fen=queue.paid_out_fen,
                returned_fen=queue.returned_fen,
                rr_group_size=seats.group_size,
                rr_points_seats=seats.points_seats,
                rr_seats_left=seats.seats_left,
                rr_points_left=seats.points_left,
            )
        )


async def mark_entries_completed(order_id: int, conn: BaseDBAsyncClient) -> None:
    """The order completed: its waiting entries become eligible under COMPLETED_FIRST."""
    figures = FigureDeltas()
    # Under the queues' locks, as settlement reads eligibility: the figures cannot drift.
    queue_ids = (
        await QueueEntry.filter(order_id=order_id).using_db(conn).values_list("queue_id", flat=True)
    )
    if queue_ids:
        await (
            Queue.filter(id__in=sorted(set(queue_ids)))
            .using_db(conn)
            .order_by("key")
            .select_for_update()
        )
    waiting = (
        await QueueEntry.filter(
            order_id=order_id, status=EntryStatus.WAITING, order_completed=False
        )
        .using_db(conn)
        .values_list("queue_id", "number", "entitlement_fen", "rewarded_fen")
    )
    for queue_id, number, entitled, rewarded in waiting:
        figures.became_eligible(queue_id, number, entitled - rewarded)
    await QueueEntry.filter(order_id=order_id).using_db(conn).update(order_completed=True)
    await figures.flush(conn)
