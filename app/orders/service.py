"""Orders: creation with deductions, payment by WeChat notification, completion."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

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
    balance_of,
    post,
    user_love_value,
    user_points,
)
from app.money import allocate_proportionally
from app.orders.models import Order, OrderLine, PaymentNotification
from app.wechat.pay_notify import PaymentNotice
from app.wechat.refund_notify import RefundNotice

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


async def _mark_paid(
    order: Order, transaction_id: str | None, paid_at: datetime, conn: BaseDBAsyncClient
) -> None:
    # A cashier payment is complete when paid (SPEC §4).
    order.status = OrderStatus.COMPLETED if order.kind == OrderKind.CASHIER else OrderStatus.PAID
    # Stored in UTC: SQLite compares datetimes as text, so every stored time shares one offset.
    paid_at = paid_at.astimezone(UTC)
    order.paid_at = paid_at
    if order.status == OrderStatus.COMPLETED:
        order.completed_at = paid_at
    order.transaction_id = transaction_id
    await order.save(
        update_fields=["status", "paid_at", "completed_at", "transaction_id"], using_db=conn
    )
    if transaction_id is not None and order.payable_fen:
        await post(
            f"payment:{transaction_id}",
            "payment",
            [(EXTERNAL_WECHAT, -order.payable_fen), (PLATFORM_SALES, order.payable_fen)],
            conn,
        )


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    accepted: bool  # answer SUCCESS to WeChat
    order_id: int | None
    newly_paid: bool
    reason: str = "OK"


async def record_payment(notice: PaymentNotice) -> PaymentOutcome:
    """Record a verified v2 notification: our own order, our own amount, one effect per order."""
    async with in_transaction() as conn:
        order = (
            await Order.filter(out_trade_no=notice.out_trade_no)
            .using_db(conn)
            .select_for_update()
            .first()
        )
        if order is None:
            return PaymentOutcome(False, None, False, "unknown out_trade_no")
        if notice.total_fee != order.payable_fen:
            return PaymentOutcome(False, order.id, False, "total_fee does not match the order")
        if order.transaction_id == notice.transaction_id:
            return PaymentOutcome(True, order.id, False, "duplicate")
        if order.status != OrderStatus.PENDING_PAYMENT:
            return PaymentOutcome(False, order.id, False, "order is not awaiting payment")
        if (
            await PaymentNotification.filter(transaction_id=notice.transaction_id)
            .using_db(conn)
            .exists()
        ):
            return PaymentOutcome(False, order.id, False, "transaction_id already used")
        await PaymentNotification.create(
            transaction_id=notice.transaction_id,
            order_id=order.id,
            total_fee=notice.total_fee,
            using_db=conn,
        )
        await _mark_paid(order, notice.transaction_id, notice.time_end, conn)
    return PaymentOutcome(True, order.id, True)


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
