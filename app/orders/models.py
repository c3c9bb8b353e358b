"""Orders, their lines, and the payment notifications that paid them."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.enums import OrderKind, OrderStatus


class Order(Model):
    id = fields.IntField(primary_key=True)
    out_trade_no = fields.CharField(max_length=32, unique=True)
    kind = fields.CharEnumField(OrderKind, max_length=16)
    status = fields.CharEnumField(OrderStatus, max_length=16, default=OrderStatus.PENDING_PAYMENT)
    user = fields.ForeignKeyField("models.User", related_name="orders", on_delete=fields.RESTRICT)
    store = fields.ForeignKeyField(
        "models.Store", related_name="orders", null=True, on_delete=fields.RESTRICT
    )
    total_fen = fields.BigIntField()
    points_used = fields.BigIntField(default=0)
    love_value_used = fields.BigIntField(default=0)
    deduction_fen = fields.BigIntField(default=0)
    payable_fen = fields.BigIntField()
    prepay_id = fields.CharField(max_length=64, null=True)
    transaction_id = fields.CharField(max_length=64, null=True, unique=True)
    # The settlement event (SPEC §4) has been applied in full; set in the same transaction.
    settled = fields.BooleanField(default=False)
    settled_at = fields.DatetimeField(null=True)
    # Set by the service from its clock, so that tests can move time.
    created_at = fields.DatetimeField()
    paid_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)
    refunded_at = fields.DatetimeField(null=True)
    refund_reason = fields.CharField(max_length=256, null=True)
    # WeChat's word on the refund (SUCCESS, CHANGE, REFUNDCLOSE) from its refund notification.
    refund_status = fields.CharField(max_length=16, null=True)
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "app_order"
        # ("settled", "paid_at", "id"): the settlement workers claim the oldest unsettled orders.
        indexes = (("user_id", "id"), ("status", "settled"), ("settled", "paid_at", "id"))


class OrderLine(Model):
    id = fields.IntField(primary_key=True)
    order = fields.ForeignKeyField("models.Order", related_name="lines", on_delete=fields.CASCADE)
    line_no = fields.IntField()
    product = fields.ForeignKeyField(
        "models.Product", related_name="order_lines", null=True, on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=128)
    unit_price_fen = fields.BigIntField()
    quantity = fields.IntField()
    amount_fen = fields.BigIntField()
    paid_fen = fields.BigIntField()
    # Fixed at the settlement event; null while unsettled or when the line is in no queue.
    queue_key = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "order_line"
        unique_together = (("order", "line_no"),)


class PaymentNotification(Model):
    """One row per WeChat transaction: the unique key that makes duplicates harmless (§19.6)."""

    id = fields.IntField(primary_key=True)
    transaction_id = fields.CharField(max_length=64, unique=True)
    order = fields.ForeignKeyField(
        "models.Order", related_name="notifications", on_delete=fields.RESTRICT
    )
    total_fee = fields.BigIntField()
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "payment_notification"
