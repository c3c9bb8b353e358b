"""Settlement of orders into their queues (SPEC §4–§7): loads state under the queues' locks, asks
the pure rules and engine, and writes entries, contributions, payouts and their ledger postings in
one database transaction. Many orders can be settled in one transaction (`settle_orders`).

A batch is worked out in memory, in payment order, exactly as orders settled one after the other
would be, and each kind of row is written in one statement for the whole batch (entries,
contributions, payouts, postings, notifications, figures): a batch of hundreds of orders costs
about 25 statements, not a few dozen per order. What depends on no queue (orders marked settled,
lines' queues, ids, the contributions' ledger transactions) is written before the queues are
locked, so that the time a hot queue is held is spent on the rows that depend on it.
"""

from __future__ import annotations

import random
import secrets
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from app.bulk import Params, copy_rows, reserve_ids, stored_moment, with_rows
from app.catalog.models import Product, Store
from app.catalog.service import product_rule, store_cashier_rule, store_goods_rule
from app.config import get_settings
from app.distribution.service import credit_orders_commissions
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
    Journal,
    Leg,
    user_cash,
    user_points,
)
from app.money import apply_ratio
from app.notifications.models import NotificationEvent
from app.notifications.outbox import Outbox
from app.orders.models import Order
from app.rebate import engine, rules
from app.rebate.eligibility import LimitScope, SeatGroup, limit_scopes, random_return_for
from app.rebate.figures import FigureDeltas, publish
from app.rebate.models import Queue, QueueEntry
from app.rebate.settings import RandomReturn, RebateRule, RebateSettings, load_rebate_settings

_system_random = secrets.SystemRandom()
_lottery_json = QueueEntry._meta.fields_map["lottery_config"].to_db_value


def settlement_due(order: Order | OrderRow, settings: RebateSettings) -> bool:
    """Is `order` at its settlement event (SPEC §4)? Cashier payments are complete when paid."""
    if order.settled:
        return False
    if order.status == OrderStatus.COMPLETED:
        return True
    return order.status == OrderStatus.PAID and settings.settle_on == SettleOn.PAID


@dataclass(slots=True)
class OrderRow:
    """What settlement reads of a locked order."""

    id: int
    kind: OrderKind
    status: OrderStatus
    user_id: int
    store_id: int | None
    points_used: int
    love_value_used: int
    settled: bool
    created_at: datetime
    paid_at: datetime | None
    completed_at: datetime | None


_ORDER_COLUMNS = (
    "id, kind, status, user_id, store_id, points_used, love_value_used, settled, created_at, "
    "paid_at, completed_at"
)


def _order_rows(rows: list[dict[str, Any]]) -> list[OrderRow]:
    return [
        OrderRow(
            id=row["id"],
            kind=OrderKind(row["kind"]),
            status=OrderStatus(row["status"]),
            user_id=row["user_id"],
            store_id=row["store_id"],
            points_used=row["points_used"],
            love_value_used=row["love_value_used"],
            settled=bool(row["settled"]),
            created_at=stored_moment(row["created_at"]),
            paid_at=None if row["paid_at"] is None else stored_moment(row["paid_at"]),
            completed_at=(
                None if row["completed_at"] is None else stored_moment(row["completed_at"])
            ),
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class LineRow:
    id: int
    order_id: int
    line_no: int
    product_id: int | None
    paid_fen: int


@dataclass(slots=True)
class LinePlan:
    line: LineRow
    queue_key: str
    contribution_fen: int
    contribution_id: int
    scopes: list[RebateRule]
    joins: bool
    ratio: rules.RatioChoice | None
    random_return: RandomReturn
    limits: tuple[LimitScope | None, LimitScope | None]


@dataclass(slots=True)
class _Waiting:
    """A waiting entry as distribution sees it."""

    entry_id: int
    number: int
    user_id: int
    entitlement_fen: int
    rewarded_fen: int
    order_completed: bool
    fresh: bool = False  # joined in this batch: written at the end, already paid as it stands

    @property
    def remaining_fen(self) -> int:
        return self.entitlement_fen - self.rewarded_fen


@dataclass(slots=True)
class QueueState:
    """One locked queue row, kept current in memory and written back once per batch."""

    id: int
    key: str
    next_number: int
    waiting_count: int
    liability_fen: int
    contributed_fen: int
    paid_out_fen: int
    returned_fen: int
    seats: SeatGroup


_QUEUE_COLUMNS = (
    "id, key, next_number, waiting_count, liability_fen, contributed_fen, paid_out_fen, "
    "returned_fen, rr_group_size, rr_points_seats, rr_seats_left, rr_points_left"
)
_FIRST_READ = 256
_LONGEST_READ = 4096


@dataclass(slots=True)
class QueueCursor:
    """The head of one locked queue in payout order, read lazily and kept current in memory.

    `head` holds the eligible waiting entries with something remaining, in entry order, and
    `head_fen` what they still wait for. Entries joined by this batch are not in the database
    yet: they queue up in `fresh` until the database's part of the queue is read to the end.
    """

    queue: QueueState
    reward_order: RewardOrder
    conn: BaseDBAsyncClient
    head: deque[_Waiting] = field(default_factory=deque)
    head_fen: int = 0
    fresh: list[_Waiting] = field(default_factory=list)
    last_number: int = 0
    read_size: int = _FIRST_READ
    exhausted: bool = False
    touched: dict[int, _Waiting] = field(default_factory=dict)

    async def _load_more(self) -> None:
        p = Params(self.conn)
        sql = (
            "SELECT id, number, user_id, entitlement_fen, rewarded_fen, order_completed "
            f"FROM queue_entry WHERE queue_id = {p(self.queue.id)} "
            f"AND status = {p(EntryStatus.WAITING.value)} AND number > {p(self.last_number)}"
        )
        if self.reward_order == RewardOrder.COMPLETED_FIRST:
            sql += " AND order_completed = true"
        sql += f" ORDER BY number LIMIT {p(self.read_size)}"
        rows = await self.conn.execute_query_dict(sql, p.values)
        for row in rows:
            waiting = _Waiting(
                row["id"],
                row["number"],
                row["user_id"],
                row["entitlement_fen"],
                row["rewarded_fen"],
                bool(row["order_completed"]),
            )
            self.head.append(waiting)
            self.head_fen += waiting.remaining_fen
            self.last_number = waiting.number
        if len(rows) < self.read_size:
            self.exhausted = True
            for waiting in self.fresh:
                self.head.append(waiting)
                self.head_fen += waiting.remaining_fen
            self.fresh.clear()
        self.read_size = min(self.read_size * 2, _LONGEST_READ)

    async def candidates_for(self, amount_fen: int) -> Iterator[engine.Candidate]:
        """The head, read far enough to absorb `amount_fen` (or to the end), from the front."""
        while not self.exhausted and self.head_fen < amount_fen:
            await self._load_more()
        return (engine.Candidate(index, w.remaining_fen) for index, w in enumerate(self.head))

    def apply(self, payouts: tuple[tuple[int, int], ...]) -> list[tuple[_Waiting, int]]:
        """Payouts go to the front of the head, in order; the filled entries leave it."""
        applied = []
        for index, amount in payouts:
            waiting = self.head[index]
            waiting.rewarded_fen += amount
            self.head_fen -= amount
            if not waiting.fresh:
                self.touched[waiting.entry_id] = waiting
            applied.append((waiting, amount))
        while self.head and self.head[0].remaining_fen == 0:
            self.head.popleft()
        return applied

    def joined(self, waiting: _Waiting, eligible: bool) -> None:
        """A new entry at the back, behind everything the database holds."""
        if not eligible:
            return
        if self.exhausted:
            self.head.append(waiting)
            self.head_fen += waiting.remaining_fen
        else:
            self.fresh.append(waiting)


@dataclass(slots=True)
class _NewEntry:
    """An entry joined by this batch, written with the batch."""

    entry_id: int
    queue: QueueState
    number: int
    order: OrderRow
    line: LineRow
    paid_day: date
    status: EntryStatus  # as it joined
    ratio: rules.RatioChoice
    entitlement_fen: int
    completed: bool
    waiting: _Waiting | None


@dataclass(slots=True)
class Batch:
    """What one settlement transaction shares across its orders, and what it will write."""

    conn: BaseDBAsyncClient
    settings: RebateSettings
    now: datetime
    rng: random.Random
    cursors: dict[str, QueueCursor] = field(default_factory=dict)
    figures: FigureDeltas = field(default_factory=FigureDeltas)
    outbox: Outbox = field(init=False)
    zone: tzinfo = field(init=False)
    today: date = field(init=False)
    entries: list[_NewEntry] = field(default_factory=list)
    # Ids taken before the queues' locks, for the entries that may join.
    entry_ids: deque[int] = field(default_factory=deque)
    contributions: list[tuple] = field(default_factory=list)
    payouts: list[tuple] = field(default_factory=list)
    journal: Journal = field(init=False)
    # Postings known once the queues are distributed, and the conversions' transactions.
    legs: list[Leg] = field(default_factory=list)
    conversions: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.now = self.now.astimezone(UTC)
        self.outbox = Outbox(self.now)
        self.journal = Journal(self.conn)
        self.zone = get_settings().timezone
        self.today = self.now.astimezone(self.zone).date()


@dataclass(frozen=True, slots=True)
class _Scope:
    """What a line's product, store and order kind decide, the same for every such line."""

    scopes: list[RebateRule] | None  # None: not rebate-enabled
    queue_key: str
    delisted: bool
    extraction_bp: int
    windows: list
    random_return: RandomReturn
    limits: tuple[LimitScope | None, LimitScope | None]
    has_tiers: bool


def _scopes_for(
    kind: OrderKind,
    product: RebateRule | None,
    goods: RebateRule | None,
    cashier: RebateRule | None,
) -> list[RebateRule] | None:
    """The line's scopes, most specific first, or None when the line is not rebate-enabled (§4)."""
    if kind == OrderKind.CASHIER:
        if cashier is None:
            return None
        scopes = [cashier]
    else:
        if product is None:
            return None
        scopes = [product]
        if kind == OrderKind.STORE_GOODS:
            if goods is None:
                return None
            scopes.append(goods)
    return scopes if all(rule.enabled for rule in scopes) else None


def _scope_setting(
    kind: OrderKind, goods: RebateRule | None, cashier: RebateRule | None
) -> RandomReturn | None:
    if kind == OrderKind.CASHIER:
        return cashier.random_return if cashier is not None else None
    if kind == OrderKind.STORE_GOODS:
        return goods.random_return if goods is not None else None
    return None


async def _cumulative_sums(
    order: OrderRow, scopes: list[RebateRule], batch: Batch
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


async def _order_lines(order_ids: list[int], conn: BaseDBAsyncClient) -> dict[int, list[LineRow]]:
    """Every line of the orders, in the order of their lines."""
    p = Params(conn)
    rows = await conn.execute_query_dict(
        "SELECT id, order_id, line_no, product_id, paid_fen FROM order_line "
        f"WHERE {p.among('order_id', order_ids)} ORDER BY order_id, line_no",
        p.values,
    )
    lines: dict[int, list[LineRow]] = {order_id: [] for order_id in order_ids}
    for row in rows:
        lines[row["order_id"]].append(
            LineRow(row["id"], row["order_id"], row["line_no"], row["product_id"], row["paid_fen"])
        )
    return lines


async def _plan_orders(
    due: list[OrderRow], lines: dict[int, list[LineRow]], batch: Batch
) -> list[tuple[OrderRow, list[LinePlan]]]:
    """What each rebate-enabled line contributes and how it may join, read at the event (§4–§6),
    for all the orders at once."""
    conn, settings = batch.conn, batch.settings
    product_ids = sorted({ln.product_id for ls in lines.values() for ln in ls if ln.product_id})
    products = (
        {p.id: p for p in await Product.filter(id__in=product_ids).using_db(conn)}
        if product_ids
        else {}
    )
    store_ids = sorted({order.store_id for order in due if order.store_id})
    stores = (
        {s.id: s for s in await Store.filter(id__in=store_ids).using_db(conn)} if store_ids else {}
    )
    product_rules = {pid: product_rule(product) for pid, product in products.items()}
    goods_rules = {sid: store_goods_rule(store) for sid, store in stores.items()}
    cashier_rules = {sid: store_cashier_rule(store) for sid, store in stores.items()}
    scope_cache: dict[tuple[OrderKind, int | None, int | None], _Scope] = {}

    def scope_of(order: OrderRow, line: LineRow) -> _Scope:
        cache_key = (order.kind, line.product_id, order.store_id)
        found = scope_cache.get(cache_key)
        if found is not None:
            return found
        product = products.get(line.product_id) if line.product_id else None
        p_rule = product_rules.get(line.product_id) if line.product_id else None
        goods = goods_rules.get(order.store_id) if order.store_id else None
        cashier = cashier_rules.get(order.store_id) if order.store_id else None
        scopes = _scopes_for(order.kind, p_rule, goods, cashier)
        key = rules.queue_key_for(
            order.kind, product_id=line.product_id, store_id=order.store_id, settings=settings
        )
        found = _Scope(
            scopes=scopes,
            queue_key=key,
            # A delisted product's queue gets no more contributions (SPEC §3).
            delisted=key.startswith("product:") and product is not None and not product.listed,
            extraction_bp=rules.resolve_extraction(scopes, settings) if scopes else 0,
            windows=next((r.reward_windows for r in scopes or [] if r.reward_windows), []),
            random_return=random_return_for(
                key, _scope_setting(order.kind, goods, cashier), settings.random_return
            ),
            limits=limit_scopes(scopes) if scopes else (None, None),
            has_tiers=any(rule.cumulative_tiers for rule in scopes or []),
        )
        scope_cache[cache_key] = found
        return found

    levels: dict[int, int | None] = {}
    if (
        settings.member_level_ratios
        or any(r.member_level_ratios for r in product_rules.values())
        or any(r.member_level_ratios for r in [*goods_rules.values(), *cashier_rules.values()])
    ):
        p = Params(conn)
        rows = await conn.execute_query_dict(
            "SELECT id, member_level_id FROM app_user "
            f"WHERE {p.among('id', sorted({o.user_id for o in due}))}",
            p.values,
        )
        levels = {row["id"]: row["member_level_id"] for row in rows}
    ratio_cache: dict[tuple[int, int | None], rules.RatioChoice] = {}
    planned: list[tuple[OrderRow, list[LinePlan]]] = []
    for order in due:
        paid_local = (order.paid_at or order.created_at).astimezone(batch.zone)
        used_deduction = order.points_used > 0 or order.love_value_used > 0
        level = levels.get(order.user_id)
        plans: list[LinePlan] = []
        for line in lines[order.id]:
            scope = scope_of(order, line)
            if scope.scopes is None or scope.delisted:
                continue
            joins = rules.in_reward_windows(scope.windows, paid_local.time())
            if used_deduction and settings.deduction_mode == DeductionMode.NOT_PARTICIPATE:
                joins = False
            ratio = None
            if joins:
                if scope.has_tiers:
                    ratio = rules.resolve_reward_ratio(
                        scope.scopes,
                        settings,
                        member_level_id=level,
                        cumulative_sums=await _cumulative_sums(order, scope.scopes, batch),
                    )
                else:
                    ratio_key = (id(scope), level)
                    ratio = ratio_cache.get(ratio_key)
                    if ratio is None:
                        ratio = rules.resolve_reward_ratio(
                            scope.scopes, settings, member_level_id=level
                        )
                        ratio_cache[ratio_key] = ratio
            plans.append(
                LinePlan(
                    line=line,
                    queue_key=scope.queue_key,
                    contribution_fen=engine.contribution(line.paid_fen, scope.extraction_bp),
                    contribution_id=0,
                    scopes=scope.scopes,
                    joins=joins,
                    ratio=ratio,
                    random_return=scope.random_return,
                    limits=scope.limits,
                )
            )
        planned.append((order, plans))
    return planned


async def lock_queues(keys: list[str], conn: BaseDBAsyncClient) -> dict[str, QueueState]:
    """Create missing queues and lock them, in key order so that two settlements cannot deadlock."""
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    locked = await _locked_queues(ordered, conn)
    missing = [key for key in ordered if key not in locked]
    if missing:
        await Queue.bulk_create(
            [Queue(key=key) for key in missing], ignore_conflicts=True, using_db=conn
        )
        locked.update(await _locked_queues(missing, conn))
    return locked


async def _locked_queues(keys: list[str], conn: BaseDBAsyncClient) -> dict[str, QueueState]:
    p = Params(conn)
    sql = f"SELECT {_QUEUE_COLUMNS} FROM rebate_queue WHERE {p.among('key', keys)} ORDER BY key"
    if p.postgres:
        sql += " FOR UPDATE"
    return {
        row["key"]: QueueState(
            id=row["id"],
            key=row["key"],
            next_number=row["next_number"],
            waiting_count=row["waiting_count"],
            liability_fen=row["liability_fen"],
            contributed_fen=row["contributed_fen"],
            paid_out_fen=row["paid_out_fen"],
            returned_fen=row["returned_fen"],
            seats=SeatGroup(
                row["rr_group_size"],
                row["rr_points_seats"],
                row["rr_seats_left"],
                row["rr_points_left"],
            ),
        )
        for row in await conn.execute_query_dict(sql, p.values)
    }


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
        p = Params(conn)
        sql = (
            f"SELECT {_ORDER_COLUMNS} FROM app_order "
            f"WHERE {p.among('id', sorted(set(order_ids)))} ORDER BY id"
        )
        if p.postgres:
            sql += " FOR UPDATE"
        locked = _order_rows(await conn.execute_query_dict(sql, p.values))
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
        statuses = [OrderStatus.COMPLETED.value]
        if settings.settle_on == SettleOn.PAID:
            statuses.append(OrderStatus.PAID.value)
        p = Params(conn)
        sql = (
            f"SELECT {_ORDER_COLUMNS} FROM app_order "
            f"WHERE settled = false AND {p.among('status', statuses)} "
            f"ORDER BY paid_at, id LIMIT {p(limit)}"
        )
        if p.postgres:
            sql += " FOR UPDATE SKIP LOCKED"
        claimed = _order_rows(await conn.execute_query_dict(sql, p.values))
        settled, figures = await _settle_locked(claimed, conn, now=now, rng=rng, settings=settings)
    await publish(figures)
    return settled


async def _settle_locked(
    locked: list[OrderRow],
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
    lines = await _order_lines([order.id for order in due], conn)
    planned = await _plan_orders(due, lines, batch) if settings.enabled else []
    # What needs no queue is written before the queues are locked: while this transaction waits
    # for a queue, another one distributing it is not held up by this work.
    await _prepare(due, planned, batch)
    if planned:
        keys = [plan.queue_key for _, plans in planned for plan in plans]
        for key, queue in (await lock_queues(keys, conn)).items():
            batch.cursors[key] = QueueCursor(queue, settings.reward_order, conn)
        for order, plans in planned:
            await _settle_one(order, plans, batch)
        await _write_back(batch)
    # Commissions are credited at the settlement event, whether or not the rebate plugin is on.
    # After the queues' locks, as every posting to the platform's accounts is.
    commissions = Outbox(batch.now)
    await credit_orders_commissions(
        [(order, lines[order.id]) for order in due], conn, now=batch.now, outbox=commissions
    )
    batch.outbox.pending += commissions.pending
    await batch.outbox.flush(conn)
    return [order.id for order in due], batch.figures


async def _prepare(
    due: list[OrderRow], planned: list[tuple[OrderRow, list[LinePlan]]], batch: Batch
) -> None:
    """Mark the orders settled, fix their lines' queues and take the ids of the rows to come."""
    conn = batch.conn
    p = Params(conn)
    await conn.execute_query(
        f"UPDATE app_order SET settled = true, settled_at = {p(batch.now)} "
        f"WHERE {p.among('id', [o.id for o in due])}",
        p.values,
    )
    plans = [plan for _, order_plans in planned for plan in order_plans]
    if not plans:
        return
    await with_rows(
        conn,
        (("id", "int"), ("queue_key", "text")),
        [(plan.line.id, plan.queue_key) for plan in plans],
        "UPDATE order_line SET queue_key = v.queue_key FROM v WHERE order_line.id = v.id",
    )
    for plan, contribution_id in zip(
        plans, await reserve_ids(conn, "contribution", len(plans)), strict=True
    ):
        plan.contribution_id = contribution_id
    joining = sum(1 for plan in plans if plan.joins and plan.ratio is not None)
    batch.entry_ids.extend(await reserve_ids(conn, "queue_entry", joining))
    # Each contribution's ledger transaction, and the platform's side of it, are known already.
    await batch.journal.open(
        (f"contribution:{plan.line.id}", "rebate_contribution") for plan in plans
    )
    await batch.journal.write(
        (f"contribution:{plan.line.id}", PLATFORM_SALES, -plan.contribution_fen) for plan in plans
    )


async def _settle_one(order: OrderRow, plans: list[LinePlan], batch: Batch) -> None:
    settings, now = batch.settings, batch.now
    # 1. Contributions of every line are distributed before any of the order's entries join.
    for plan in plans:
        cursor = batch.cursors[plan.queue_key]
        queue = cursor.queue
        if settings.paused:
            result = engine.distribute(plan.contribution_fen, (), paused=True)
        else:
            candidates = await cursor.candidates_for(plan.contribution_fen)
            result = engine.distribute(plan.contribution_fen, candidates, paused=False)
        applied = cursor.apply(result.payouts)
        paid_out = result.paid_out_fen
        batch.contributions.append(
            (
                plan.contribution_id,
                queue.id,
                order.id,
                plan.line.id,
                plan.contribution_fen,
                paid_out,
                result.returned_fen,
                settings.paused,
                settings.reward_order.value,
                now,
            )
        )
        key = f"contribution:{plan.line.id}"
        batch.legs.append((key, PLATFORM_RETURNED, result.returned_fen))
        for waiting, amount in applied:
            batch.payouts.append((plan.contribution_id, waiting.entry_id, order.id, amount, now))
            batch.legs.append((key, user_cash(waiting.user_id), amount))
        queue.contributed_fen += plan.contribution_fen
        queue.paid_out_fen += paid_out
        queue.returned_fen += result.returned_fen
        queue.liability_fen -= paid_out
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
            queue.id, batch.today, plan.contribution_fen, paid_out, result.returned_fen
        )
    # 2. Then the order's eligible lines join at the back, in the order of its lines.
    paid_day = (order.paid_at or order.created_at).astimezone(batch.zone).date()
    for plan in plans:
        if (
            plan.joins
            and plan.ratio is not None
            and await _within_limits(order, plan, paid_day, batch)
        ):
            _join(order, plan, paid_day, batch)


async def _within_limits(order: OrderRow, plan: LinePlan, paid_day: date, batch: Batch) -> bool:
    per_day, total = plan.limits
    for limit, day in ((per_day, paid_day), (total, None)):
        if limit is None:
            continue
        scope = _scope_filter(order, plan, limit.scope)
        query = QueueEntry.filter(user_id=order.user_id).exclude(status=EntryStatus.CANCELLED)
        query = query.filter(**scope)
        if day is not None:
            query = query.filter(paid_day=day)
        # Entries this batch has joined are not written yet: they count too.
        joined = sum(
            1
            for entry in batch.entries
            if entry.order.user_id == order.user_id
            and (day is None or entry.paid_day == day)
            and all(_entry_value(entry, name) == value for name, value in scope.items())
        )
        if await query.using_db(batch.conn).count() + joined >= limit.limit:
            return False
    return True


def _entry_value(entry: _NewEntry, name: str) -> object:
    if name == "product_id":
        return entry.line.product_id
    if name == "store_id":
        return entry.order.store_id
    return entry.order.kind


def _scope_filter(order: OrderRow, plan: LinePlan, scope: int) -> dict[str, object]:
    """Entries earned in one of a line's scopes: its product's, its store's goods, its cashier."""
    if order.kind == OrderKind.CASHIER:
        return {"store_id": order.store_id, "order_kind": OrderKind.CASHIER}
    if scope == 0:
        return {"product_id": plan.line.product_id}
    return {"store_id": order.store_id, "order_kind": OrderKind.STORE_GOODS}


def _join(order: OrderRow, plan: LinePlan, paid_day: date, batch: Batch) -> None:
    assert plan.ratio is not None
    cursor = batch.cursors[plan.queue_key]
    queue = cursor.queue
    entitled = engine.entitlement(plan.line.paid_fen, plan.ratio.ratio_bp)
    converts = plan.random_return.enabled and queue.seats.draw(plan.random_return, batch.rng)
    if converts:
        status = EntryStatus.CONVERTED
    elif entitled == 0:
        status = EntryStatus.COMPLETED
    else:
        status = EntryStatus.WAITING
    completed = order.status == OrderStatus.COMPLETED
    entry_id = batch.entry_ids.popleft()
    number = queue.next_number
    queue.next_number += 1
    waiting = None
    if status == EntryStatus.WAITING:
        waiting = _Waiting(entry_id, number, order.user_id, entitled, 0, completed, fresh=True)
    batch.entries.append(
        _NewEntry(
            entry_id,
            queue,
            number,
            order,
            plan.line,
            paid_day,
            status,
            plan.ratio,
            entitled,
            completed,
            waiting,
        )
    )
    batch.outbox.add(
        order.user_id,
        NotificationEvent.ENTRY_JOINED,
        entryId=entry_id,
        queueKey=queue.key,
        number=number,
        entitlementFen=entitled,
        status=status.value,
    )
    if waiting is not None:
        queue.waiting_count += 1
        queue.liability_fen += entitled
        batch.figures.waiting(queue.id, number, 1, entitled, completed=completed)
        eligible = completed or batch.settings.reward_order == RewardOrder.QUEUE_ORDER
        cursor.joined(waiting, eligible)
    if converts:
        points = apply_ratio(entitled, batch.settings.points_exchange_ratio_bp)
        key = f"convert:{entry_id}"
        batch.conversions.append((key, "random_return_points"))
        batch.legs += [(key, user_points(order.user_id), points), (key, PLATFORM_POINTS, -points)]


_ENTRY_COLUMNS = (
    ("id", "bigint"),
    ("queue_id", "int"),
    ("queue_key", "text"),
    ("number", "bigint"),
    ("order_id", "int"),
    ("line_id", "int"),
    ("user_id", "int"),
    ("product_id", "int"),
    ("store_id", "int"),
    ("order_kind", "text"),
    ("paid_day", "date"),
    ("status", "text"),
    ("paid_fen", "bigint"),
    ("ratio_bp", "int"),
    ("ratio_source", "text"),
    ("entitlement_fen", "bigint"),
    ("rewarded_fen", "bigint"),
    ("order_completed", "bool"),
    ("lottery_config", "jsonb"),
    ("lottery_drawn", "bool"),
    ("created_at", "timestamptz"),
    ("ended_at", "timestamptz"),
)
_CONTRIBUTION_COLUMNS = (
    ("id", "bigint"),
    ("queue_id", "int"),
    ("order_id", "int"),
    ("line_id", "int"),
    ("amount_fen", "bigint"),
    ("paid_out_fen", "bigint"),
    ("returned_fen", "bigint"),
    ("paused", "bool"),
    ("reward_order", "text"),
    ("created_at", "timestamptz"),
)
_PAYOUT_COLUMNS = (
    ("contribution_id", "bigint"),
    ("entry_id", "bigint"),
    ("from_order_id", "int"),
    ("amount_fen", "bigint"),
    ("created_at", "timestamptz"),
)


async def _write_back(batch: Batch) -> None:
    """Write what the batch worked out: each kind of row in one statement."""
    conn, now = batch.conn, batch.now
    # Rows other rows refer to come first: the key checks of the later ones then find them
    # written (or locked) by this transaction, which is their cheapest case.
    await with_rows(
        conn,
        (("id", "bigint"), ("rewarded", "bigint"), ("status", "text"), ("ended_at", "timestamptz")),
        [
            (entry_id, waiting.rewarded_fen, EntryStatus.COMPLETED.value, now)
            if waiting.remaining_fen == 0
            else (entry_id, waiting.rewarded_fen, EntryStatus.WAITING.value, None)
            for cursor in batch.cursors.values()
            for entry_id, waiting in cursor.touched.items()
        ],
        "UPDATE queue_entry SET rewarded_fen = v.rewarded, status = v.status, "
        "ended_at = v.ended_at FROM v WHERE queue_entry.id = v.id",
    )
    await copy_rows(
        conn, "queue_entry", _ENTRY_COLUMNS, [_entry_row(e, now) for e in batch.entries]
    )
    await copy_rows(conn, "contribution", _CONTRIBUTION_COLUMNS, batch.contributions)
    await copy_rows(conn, "payout", _PAYOUT_COLUMNS, batch.payouts)
    await batch.journal.open(batch.conversions)
    await batch.journal.close(batch.legs)
    await batch.figures.flush(conn)
    await with_rows(
        conn,
        _QUEUE_FIGURES,
        [
            (
                q.id,
                q.next_number,
                q.waiting_count,
                q.liability_fen,
                q.contributed_fen,
                q.paid_out_fen,
                q.returned_fen,
                q.seats.group_size,
                q.seats.points_seats,
                q.seats.seats_left,
                q.seats.points_left,
            )
            for q in (cursor.queue for cursor in batch.cursors.values())
        ],
        "UPDATE rebate_queue SET next_number = v.next_number, waiting_count = v.waiting_count, "
        "liability_fen = v.liability_fen, contributed_fen = v.contributed_fen, "
        "paid_out_fen = v.paid_out_fen, returned_fen = v.returned_fen, "
        "rr_group_size = v.rr_group_size, rr_points_seats = v.rr_points_seats, "
        "rr_seats_left = v.rr_seats_left, rr_points_left = v.rr_points_left "
        "FROM v WHERE rebate_queue.id = v.id",
    )


_QUEUE_FIGURES = (
    ("id", "int"),
    ("next_number", "bigint"),
    ("waiting_count", "bigint"),
    ("liability_fen", "bigint"),
    ("contributed_fen", "bigint"),
    ("paid_out_fen", "bigint"),
    ("returned_fen", "bigint"),
    ("rr_group_size", "int"),
    ("rr_points_seats", "int"),
    ("rr_seats_left", "int"),
    ("rr_points_left", "int"),
)


def _entry_row(entry: _NewEntry, now: datetime) -> tuple:
    """A new entry's row as it stands at the batch's end (paid, or filled, by later orders)."""
    waiting = entry.waiting
    status = entry.status
    if waiting is not None and waiting.remaining_fen == 0:
        status = EntryStatus.COMPLETED
    lottery = entry.ratio.lottery
    return (
        entry.entry_id,
        entry.queue.id,
        entry.queue.key,
        entry.number,
        entry.order.id,
        entry.line.id,
        entry.order.user_id,
        entry.line.product_id,
        entry.order.store_id,
        entry.order.kind.value,
        entry.paid_day,
        status.value,
        entry.line.paid_fen,
        entry.ratio.ratio_bp,
        entry.ratio.source.value,
        entry.entitlement_fen,
        waiting.rewarded_fen if waiting is not None else 0,
        entry.completed,
        _lottery_json(lottery.model_dump(mode="json"), QueueEntry) if lottery else None,
        False,
        now,
        None if status == EntryStatus.WAITING else now,
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
