"""Withdrawals of a user's cash to their WeChat change (SPEC §16)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from app.enums import WithdrawalStatus

if TYPE_CHECKING:
    from app.members.models import User


class Withdrawal(Model):
    """One request to pay `amount_fen − fee_fen` of a user's cash to their WeChat change.

    The amount is held in the ledger from the request on, and the row says what became of it.
    A PENDING withdrawal with `reviewed_at` set has been approved: a transfer may have reached
    WeChat, so it can only end PAID (by approving again), never be rejected.
    """

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="withdrawals", on_delete=fields.RESTRICT
    )
    amount_fen = fields.BigIntField()
    fee_fen = fields.BigIntField()
    status = fields.CharEnumField(WithdrawalStatus, max_length=16, default=WithdrawalStatus.PENDING)
    # WeChat pays one number once: every retry of the transfer sends this same one. Null only
    # inside the creating transaction, between the insert that gives the id and its update.
    partner_trade_no = fields.CharField(max_length=32, unique=True, null=True)
    # From the service's clock, not the database's: tests and jobs run on a given `now`.
    created_at = fields.DatetimeField()
    # Set by the first review: the rejection, or the approval before its first transfer attempt.
    reviewed_at = fields.DatetimeField(null=True)
    paid_at = fields.DatetimeField(null=True)
    payment_no = fields.CharField(max_length=64, null=True)  # WeChat's number for the transfer
    reject_reason = fields.CharField(max_length=255, null=True)
    last_error = fields.CharField(max_length=500, null=True)  # the latest failed transfer attempt

    class Meta:
        table = "withdrawal"
        # A user's own list and the operator's list by status, both newest first by id.
        indexes = (("user_id", "id"), ("status", "id"))
