"""Paid orders made straight through the services, for tests about what happens after payment."""

from __future__ import annotations

from datetime import UTC, datetime

from app.catalog.service import upsert_product
from app.members.service import login_with_openid
from app.orders.models import Order
from app.orders.service import LineRequest, create_order, record_payment
from app.wechat.pay_notify import PaymentNotice

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


async def pay(order: Order, transaction_id: str, *, time_end: datetime = NOW) -> None:
    """Record WeChat's payment of `order` as a verified notification would."""
    await record_payment(
        PaymentNotice(
            out_trade_no=order.out_trade_no,
            transaction_id=transaction_id,
            total_fee=order.payable_fen,
            cash_fee=order.payable_fen,
            appid="wx",
            mch_id="1",
            openid="o",
            time_end=time_end,
            raw={},
        )
    )


async def paid_orders(count: int, *, price_fen: int = 16800, prefix: str = "buyer") -> list[int]:
    """`count` one-line orders of one product by as many buyers, paid but not settled."""
    product = await upsert_product(
        {"name": "礼盒", "price_fen": price_fen, "rebate": {"enabled": True}}
    )
    ids = []
    for index in range(count):
        user = await login_with_openid(f"{prefix}-{index}", "session")
        order = await create_order(user.id, [LineRequest(product.id, 1)], now=NOW)
        await pay(order, f"{prefix}-{index:08d}")
        ids.append(order.id)
    return ids
