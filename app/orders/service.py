"""Orders: creation with deductions, payment by WeChat notification, completion."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.bulk import Params
from app.catalog.models import Product
from app.enums import OrderKind, OrderStatus
from app.errors import BadInput, Conflict, Forbidden, NotFound
from app.ids import parse_id
from app.ledger.service import (
    EXTERNAL_WECHAT,
    PLATFORM_LOVE_VALUE,
    PLATFORM_POINTS,
    PLATFORM_SALES,
    AccountRef,
    Txn,
    balance_of,
    post,
    post_many,
    user_love_value,
    user_points,
)
from app.money import allocate_proportionally
from app.orders.models import Order, OrderLine
from app.wechat.pay_notify import PaymentNotice
from app.wechat.refund_notify import RefundNotice

log = logging.getLogger("rebate.orders")

MAX_LINES = 50
MAX_CASHIER_FEN = 10_000_000  # 100,000 yuan in one in-store payment is a typo, not a purchase
MAX_QUANTITY = 9999


def new_out_trade_no(now: datetime) -> str:
    # WeChat allows 32 characters of [0-9A-Za-z_-*]; time first so that numbers sort by creation.
    return now.strftime("R%Y%m%d%H%M%S") + secrets.token_hex(6).upper()


@dataclass(frozen=True, slots=True)
class LineRequest:
    product_id: int
    quantity: int


def parse_line_requests(raw: list[tuple[Any, Any]]) -> list[LineRequest]:
    if not raw:
        raise BadInput("an order needs at least one line", field="lines")
    if len(raw) > MAX_LINES:
        raise BadInput(f"an order has at most {MAX_LINES} lines", field="lines")
    parsed = []
    for index, (product_id, quantity) in enumerate(raw):
        if (
            not isinstance(quantity, int)
            or isinstance(quantity, bool)
            or not 0 < quantity <= MAX_QUANTITY
        ):
            raise BadInput(
                f"lines[{index}].quantity must be between 1 and {MAX_QUANTITY}",
                field=f"lines[{index}].quantity",
            )
        parsed.append(LineRequest(parse_id(product_id, f"lines[{index}].productId"), quantity))
    return parsed


def _check_use(value: int | None, name: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadInput(f"{name} must be a non-negative integer", field=name)
    return value


async def create_order(
    user_id: int,
    lines: list[LineRequest],
    *,
    points_to_use: int | None = None,
    love_value_to_use: int | None = None,
    now: datetime | None = None,
) -> Order:
    """Price the lines from our own catalogue, hold the deductions, and open the order."""
    now = now or datetime.now(UTC)
    points = _check_use(points_to_use, "pointsToUse")
    love = _check_use(love_value_to_use, "loveValueToUse")
    async with in_transaction() as conn:
        wanted = {line.product_id for line in lines}
        products = {p.id: p for p in await Product.filter(id__in=list(wanted)).using_db(conn)}
        for index, line in enumerate(lines):
            product = products.get(line.product_id)
            if product is None:
                raise NotFound(
                    f"product {line.product_id} not found", field=f"lines[{index}].productId"
                )
            if not product.listed:
                raise BadInput(
                    f"product {line.product_id} is not for sale", field=f"lines[{index}].productId"
                )
        store_ids = {products[line.product_id].store_id for line in lines}
        if len(store_ids) > 1:
            raise BadInput(
                "one order holds mall goods or one store's goods, not a mix", field="lines"
            )
        store_id = store_ids.pop()
        amounts = [products[ln.product_id].price_fen * ln.quantity for ln in lines]
        total = sum(amounts)
        await _check_wallet(user_id, points, love, conn)
        deduction = min(points + love, total)
        # Deductions beyond the total are not taken: points first, then love value.
        points = min(points, deduction)
        love = deduction - points
        shares = allocate_proportionally(deduction, amounts)
        order = await Order.create(
            out_trade_no=new_out_trade_no(now),
            kind=OrderKind.STORE_GOODS if store_id else OrderKind.MALL,
            user_id=user_id,
            store_id=store_id,
            total_fen=total,
            points_used=points,
            love_value_used=love,
            deduction_fen=deduction,
            payable_fen=total - deduction,
            created_at=now,
            using_db=conn,
        )
        await OrderLine.bulk_create(
            [
                OrderLine(
                    order_id=order.id,
                    line_no=index,
                    product_id=line.product_id,
                    name=products[line.product_id].name,
                    unit_price_fen=products[line.product_id].price_fen,
                    quantity=line.quantity,
                    amount_fen=amount,
                    paid_fen=amount - share,
                )
                for index, (line, amount, share) in enumerate(
                    zip(lines, amounts, shares, strict=True)
                )
            ],
            using_db=conn,
        )
        await _hold_deductions(order, conn)
        if order.payable_fen == 0:
            await _mark_paid(order, None, now, conn)
    return order


async def create_cashier_order(
    user_id: int, store_id: Any, amount_fen: Any, *, now: datetime | None = None
) -> Order:
    """收银台买单: the amount the consumer typed at the store's cashier, as a one-line order."""
    from app.catalog.models import Store

    now = now or datetime.now(UTC)
    if (
        not isinstance(amount_fen, int)
        or isinstance(amount_fen, bool)
        or not 0 < amount_fen <= MAX_CASHIER_FEN
    ):
        raise BadInput(f"amountFen must be between 1 and {MAX_CASHIER_FEN} fen", field="amountFen")
    store_pk = parse_id(store_id, "storeId")
    async with in_transaction() as conn:
        store = await Store.filter(id=store_pk).using_db(conn).first()
        if store is None:
            raise NotFound(f"store {store_id} not found", field="storeId")
        order = await Order.create(
            out_trade_no=new_out_trade_no(now),
            kind=OrderKind.CASHIER,
            user_id=user_id,
            store_id=store.id,
            total_fen=amount_fen,
            payable_fen=amount_fen,
            created_at=now,
            using_db=conn,
        )
        await OrderLine.create(
            order_id=order.id,
            line_no=0,
            product_id=None,
            name=f"{store.name} 收银台买单"[:128],
            unit_price_fen=amount_fen,
            quantity=1,
            amount_fen=amount_fen,
            paid_fen=amount_fen,
            using_db=conn,
        )
    return order


async def _check_wallet(user_id: int, points: int, love: int, conn: BaseDBAsyncClient) -> None:
    if points and await balance_of(user_points(user_id), conn) < points:
        raise BadInput("not enough points in the wallet", field="pointsToUse")
    if love and await balance_of(user_love_value(user_id), conn) < love:
        raise BadInput("not enough love value in the wallet", field="loveValueToUse")


def deduction_postings(order: Order, *, returned: bool) -> list[tuple[AccountRef, int]]:
    """The order's points and love value leaving the wallet, or coming back to it (SPEC §4)."""
    sign = 1 if returned else -1
    postings: list[tuple[AccountRef, int]] = []
    if order.points_used:
        postings += [
            (user_points(order.user_id), sign * order.points_used),
            (PLATFORM_POINTS, -sign * order.points_used),
        ]
    if order.love_value_used:
        postings += [
            (user_love_value(order.user_id), sign * order.love_value_used),
            (PLATFORM_LOVE_VALUE, -sign * order.love_value_used),
        ]
    return postings


async def _hold_deductions(order: Order, conn: BaseDBAsyncClient) -> None:
    """Points and love value leave the wallet when the order is created (SPEC §4)."""
    if postings := deduction_postings(order, returned=False):
        await post(f"deduction:{order.id}", "order_deduction", postings, conn)


def _set_paid(order: Order | _Payable, transaction_id: str | None, paid_at: datetime) -> None:
    # A cashier payment is complete when paid (SPEC §4).
    order.status = OrderStatus.COMPLETED if order.kind == OrderKind.CASHIER else OrderStatus.PAID
    # Stored in UTC: SQLite compares datetimes as text, so every stored time shares one offset.
    paid_at = paid_at.astimezone(UTC)
    order.paid_at = paid_at
    if order.status == OrderStatus.COMPLETED:
        order.completed_at = paid_at
    order.transaction_id = transaction_id


PAID_FIELDS = ["status", "paid_at", "completed_at", "transaction_id"]


def _payment_postings(amount: int) -> list[tuple[AccountRef, int]]:
    return [(EXTERNAL_WECHAT, -amount), (PLATFORM_SALES, amount)]


async def _mark_paid(
    order: Order, transaction_id: str | None, paid_at: datetime, conn: BaseDBAsyncClient
) -> None:
    _set_paid(order, transaction_id, paid_at)
    await order.save(update_fields=PAID_FIELDS, using_db=conn)
    if transaction_id is not None and order.payable_fen:
        await post(
            f"payment:{transaction_id}", "payment", _payment_postings(order.payable_fen), conn
        )


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    accepted: bool  # answer SUCCESS to WeChat
    order_id: int | None
    newly_paid: bool
    reason: str = "OK"


async def record_payment(notice: PaymentNotice) -> PaymentOutcome:
    """Record a verified notification: our own order, our own amount, one effect per order."""
    (outcome,) = await record_payments([notice])
    return outcome


async def record_payments(notices: Sequence[PaymentNotice]) -> list[PaymentOutcome]:
    """Record verified notifications in one transaction, each judged as if it came alone, in turn.

    Every order named is locked before any is judged, in id order as every caller locks them, so
    that concurrent batches (another server process, a duplicate notification) cannot deadlock.
    The payment ledger transactions are written together, the platform's two accounts updated
    once for all: those rows are in every payment, and one commit for many notifications is what
    lets them through at the rate WeChat sends them (one disk flush, one hold of those rows).
    The statements are written out rather than built by the ORM: on this path the ORM's objects
    and query building cost more CPU than the database does.
    """
    async with in_transaction() as conn:
        return await record_payments_in(conn, notices)


async def record_payments_in(
    conn: BaseDBAsyncClient, notices: Sequence[PaymentNotice], *, check_used: bool = True
) -> list[PaymentOutcome]:
    """`record_payments` in the caller's database transaction.

    `check_used=False` leaves a transaction id that paid another order to the unique keys on
    transaction ids (the order's, the notification's): the whole call then fails, and the caller
    records the notifications again one by one with the check. Real WeChat never sends one, so
    the batches of the busy path save a statement (and a lookup whose plan, made while the table
    was small, may scan it).
    """
    sql = Params(conn)
    rows = await conn.execute_query_dict(
        "SELECT id, out_trade_no, kind, status, payable_fen, transaction_id FROM app_order "
        f"WHERE {sql.among('out_trade_no', {n.out_trade_no for n in notices})} "
        f"ORDER BY id{' FOR UPDATE' if sql.postgres else ''}",
        sql.values,
    )
    orders = {row["out_trade_no"]: _Payable(**row) for row in rows}
    used: set[str] = set()
    if check_used:
        sql = Params(conn)
        used = {
            row["transaction_id"]
            for row in await conn.execute_query_dict(
                "SELECT transaction_id FROM payment_notification "
                f"WHERE {sql.among('transaction_id', {n.transaction_id for n in notices})}",
                sql.values,
            )
        }
    outcomes = []
    paid: list[tuple[_Payable, PaymentNotice]] = []
    for notice in notices:
        order = orders.get(notice.out_trade_no)
        outcome = _judge_payment(notice, order, used)
        outcomes.append(outcome)
        if outcome.newly_paid and order is not None:
            # Later notices of the batch see this one's effect, as they would one by one.
            used.add(notice.transaction_id)
            _set_paid(order, notice.transaction_id, notice.time_end)
            paid.append((order, notice))
    if paid:
        now = datetime.now(UTC)
        marks = Params(conn).marks
        await conn.execute_many(
            "INSERT INTO payment_notification (transaction_id, order_id, total_fee, "
            f"received_at) VALUES ({marks(4)})",
            [[n.transaction_id, order.id, n.total_fee, now] for order, n in paid],
        )
        await conn.execute_many(
            f"UPDATE app_order SET status = {marks(1)}, paid_at = {marks(1, 2)}, "
            f"completed_at = {marks(1, 3)}, transaction_id = {marks(1, 4)} "
            f"WHERE id = {marks(1, 5)}",
            [[str(o.status), o.paid_at, o.completed_at, o.transaction_id, o.id] for o, _ in paid],
        )
        await _post_payments([order for order, _ in paid], conn)
    return outcomes


@dataclass(slots=True)
class _Payable:
    """The columns of an order that recording its payment reads and writes."""

    id: int
    out_trade_no: str
    kind: str
    status: str
    payable_fen: int
    transaction_id: str | None
    paid_at: datetime | None = None
    completed_at: datetime | None = None


class PaymentRecorder:
    """Records the notifications that arrive together in one transaction, then answers each.

    Nothing waits for company: a notification that finds no batch being written starts one at
    once, and those that arrive while its transaction begins, or in the turns of the loop that
    keep bringing more, join it; those that arrive later form the next. One batch is written at
    a time per process.
    When a batch fails as a whole (a race with another process over a transaction id, or a
    transaction id that paid another order, which batches leave to the unique keys), its
    notifications are recorded one by one, so that one cannot take the others down with it.
    """

    def __init__(self, max_batch: int = 128) -> None:
        self.max_batch = max_batch
        self._waiting: list[tuple[PaymentNotice, asyncio.Future[PaymentOutcome]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, notice: PaymentNotice) -> PaymentOutcome:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[PaymentOutcome] = loop.create_future()
        self._waiting.append((notice, answer))
        if self._writer is None:
            self._writer = loop.create_task(self._write())
        return await answer

    async def _arrivals(self) -> None:
        """Let the loop read on while each of its turns brings notifications (and the batch has
        room): a turn that brings none ends it at once, so a quiet server waits for nothing."""
        while len(self._waiting) < self.max_batch:
            before = len(self._waiting)
            await asyncio.sleep(0)
            if len(self._waiting) == before:
                return

    def _take(self) -> list[tuple[PaymentNotice, asyncio.Future[PaymentOutcome]]]:
        batch = self._waiting[: self.max_batch]
        del self._waiting[: self.max_batch]
        return batch

    async def _write(self) -> None:
        batch: list[tuple[PaymentNotice, asyncio.Future[PaymentOutcome]]] = []
        try:
            while self._waiting:
                batch = []
                results: list[PaymentOutcome | BaseException]
                try:
                    async with in_transaction() as conn:
                        # Taken once the transaction has begun and the requests being read have
                        # been: those that arrived meanwhile join this batch. Under load BEGIN's
                        # round trip waits for turns of the loop spent reading other requests (a
                        # burst of them at once), which would otherwise make a batch of the
                        # first one or two and keep the rest waiting for it.
                        await self._arrivals()
                        batch = self._take()
                        notices = [notice for notice, _ in batch]
                        results = list(await record_payments_in(conn, notices, check_used=False))
                except Exception as exc:
                    batch = batch or self._take()
                    log.warning("%d payments failed together (%r); one by one", len(batch), exc)
                    results = [await _alone(notice) for notice, _ in batch]
                for (_, answer), result in zip(batch, results, strict=True):
                    if answer.done():  # the request went away; WeChat will ask again
                        continue
                    if isinstance(result, BaseException):
                        answer.set_exception(result)
                    else:
                        answer.set_result(result)
        finally:
            self._writer = None
            # Only when the writer itself was stopped (the server shutting down): no request may
            # wait for an answer nobody will give.
            for _, answer in [*batch, *self._waiting]:
                if not answer.done():
                    answer.set_exception(RuntimeError("payment recording stopped"))
            self._waiting.clear()


async def _alone(notice: PaymentNotice) -> PaymentOutcome | BaseException:
    try:
        return await record_payment(notice)
    except Exception as exc:
        return exc


def _judge_payment(
    notice: PaymentNotice, order: _Payable | None, used_transactions: set[str]
) -> PaymentOutcome:
    if order is None:
        return PaymentOutcome(False, None, False, "unknown out_trade_no")
    if notice.total_fee != order.payable_fen:
        return PaymentOutcome(False, order.id, False, "total_fee does not match the order")
    if order.transaction_id == notice.transaction_id:
        return PaymentOutcome(True, order.id, False, "duplicate")
    if order.status != OrderStatus.PENDING_PAYMENT:
        return PaymentOutcome(False, order.id, False, "order is not awaiting payment")
    if notice.transaction_id in used_transactions:
        return PaymentOutcome(False, order.id, False, "transaction_id already used")
    return PaymentOutcome(True, order.id, True)


async def _post_payments(orders: Sequence[_Payable], conn: BaseDBAsyncClient) -> None:
    """Each order's `payment:<transaction id>` ledger transaction, as `post` writes one, at once.

    The platform's two accounts move last: batches of the server's processes (and the workers'
    settlements) take turns over those rows, and with their move last a batch holds them for
    its commit alone. Traced in the notify benchmark, a batch's ledger step took 3-28 ms
    (median 7.4), waiting out the other process's postings; 3.4-5 ms with the move last.
    """
    await post_many(
        [
            Txn(f"payment:{order.transaction_id}", "payment", _payment_postings(order.payable_fen))
            for order in orders
            if order.transaction_id is not None and order.payable_fen
        ],
        conn,
        balances_last=True,
    )


def out_refund_no_for(out_trade_no: str) -> str:
    """One refund per order, so one refund number: WeChat refunds it once however often asked."""
    return f"RF{out_trade_no}"


async def record_refund_notice(notice: RefundNotice) -> tuple[bool, str]:
    """WeChat's refund notification: our own refund, of our own amount, recorded once."""
    async with in_transaction() as conn:
        order = (
            await Order.filter(out_trade_no=notice.out_trade_no)
            .using_db(conn)
            .select_for_update()
            .first()
        )
        if order is None or notice.out_refund_no != out_refund_no_for(order.out_trade_no):
            return False, "unknown refund"
        if notice.refund_fee != order.payable_fen or notice.total_fee != order.payable_fen:
            return False, "refund_fee does not match the order"
        if order.status != OrderStatus.REFUNDED:
            # Our side of the refund commits right after WeChat accepts it: ask WeChat to retry.
            return False, "refund not recorded yet"
        if order.refund_status != notice.refund_status:
            order.refund_status = notice.refund_status
            await order.save(update_fields=["refund_status"], using_db=conn)
    return True, "OK"


async def complete_order(
    order_id: Any,
    *,
    now: datetime | None = None,
    buyer_id: int | None = None,
    store_owner_id: int | None = None,
) -> Order:
    """PAID → COMPLETED (SPEC §4: strict transitions); settlement follows when due.

    The operator completes any order; `buyer_id` confirms receipt of one's own order and
    `store_owner_id` completes an order of one's own store.
    """
    from app.catalog.models import Store
    from app.distribution.service import order_completed as commissions_order_completed
    from app.rebate.service import mark_entries_completed

    now = now or datetime.now(UTC)
    async with in_transaction() as conn:
        order = (
            await Order.filter(id=parse_id(order_id, "orderId"))
            .using_db(conn)
            .select_for_update()
            .first()
        )
        if order is None or (buyer_id is not None and order.user_id != buyer_id):
            raise NotFound(f"order {order_id} not found")
        if store_owner_id is not None:
            owners = (
                await Store.filter(id=order.store_id)
                .using_db(conn)
                .values_list("owner_id", flat=True)
                if order.store_id
                else []
            )
            if not owners or owners[0] != store_owner_id:
                raise Forbidden("only the operator or the store's owner completes this order")
        if order.status != OrderStatus.PAID:
            raise Conflict(f"order {order.id} is {order.status.value}; only a PAID order completes")
        order.status = OrderStatus.COMPLETED
        order.completed_at = now
        await order.save(update_fields=["status", "completed_at"], using_db=conn)
        await mark_entries_completed(order.id, conn)
        await commissions_order_completed(order.id, conn, now=now)
    return order


async def get_order(order_id: Any) -> Order:
    order = await Order.filter(id=parse_id(order_id, "id")).first()
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


async def set_prepay_id(order_id: int, prepay_id: str) -> None:
    await Order.filter(id=order_id).update(prepay_id=prepay_id)


async def close_unpaid(order_id: int, now: datetime | None = None) -> None:
    """Close an order that will not be paid and give its deductions back."""
    now = now or datetime.now(UTC)
    async with in_transaction() as conn:
        order = await Order.filter(id=order_id).using_db(conn).select_for_update().first()
        if order is None or order.status != OrderStatus.PENDING_PAYMENT:
            return
        order.status = OrderStatus.CLOSED
        order.closed_at = now
        await order.save(update_fields=["status", "closed_at"], using_db=conn)
        if postings := deduction_postings(order, returned=True):
            await post(f"deduction-release:{order.id}", "order_deduction_release", postings, conn)
