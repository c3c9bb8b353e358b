"""Commissions earned by referrers, team leaders and shareholders (SPEC §14)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from app.enums import CommissionKind, CommissionStatus

if TYPE_CHECKING:
    from app.catalog.models import Store
    from app.members.models import User
    from app.orders.models import Order, OrderLine


class Commission(Model):
    """One reward to one beneficiary for one cause, mirrored by the ledger.

    PENDING money sits in the user's commission_pending account until the order is completed
    and the freeze days have passed, then it moves to cash and the row becomes AVAILABLE.
    A refund before that cancels it. Dividends are AVAILABLE from the start.
    """

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="commissions", on_delete=fields.RESTRICT
    )
    kind = fields.CharEnumField(CommissionKind, max_length=32)
    status = fields.CharEnumField(CommissionStatus, max_length=16, default=CommissionStatus.PENDING)
    amount_fen = fields.BigIntField()
    # The buyer whose purchase earned it, null for dividends.
    from_user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="commissions_given", null=True, on_delete=fields.RESTRICT
    )
    order: fields.ForeignKeyNullableRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="commissions", null=True, on_delete=fields.RESTRICT
    )
    line: fields.ForeignKeyNullableRelation[OrderLine] = fields.ForeignKeyField(
        "models.OrderLine", related_name="commissions", null=True, on_delete=fields.RESTRICT
    )
    store: fields.ForeignKeyNullableRelation[Store] = fields.ForeignKeyField(
        "models.Store", related_name="commissions", null=True, on_delete=fields.RESTRICT
    )
    # The cause, the same as the ledger transaction's key: a second credit for it is refused.
    key = fields.CharField(max_length=128, unique=True)
    # Null until the order is completed, then completion plus the freeze days.
    available_at = fields.DatetimeField(null=True)
    # From the service's clock, not the database's: tests and jobs run on a given `now`.
    created_at = fields.DatetimeField()

    class Meta:
        table = "commission"
        # A user's own list newest first, and the release job's scan of due PENDING rows.
        indexes = (("user_id", "id"), ("status", "available_at"))
