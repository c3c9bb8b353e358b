"""Merchant applications (商家入驻, SPEC §15) and their review."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from app.enums import ApplicationStatus

if TYPE_CHECKING:
    from app.catalog.models import Store
    from app.members.models import User


class MerchantApplication(Model):
    """One user's request to open a store. An approval creates the store in the same transaction."""

    id = fields.IntField(primary_key=True)
    applicant: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="merchant_applications", on_delete=fields.RESTRICT
    )
    # Who brought the merchant: the code typed in the application, else the applicant's own
    # referrer. Copied onto the store at approval, it earns the merchant-referral commission.
    referrer: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User",
        related_name="referred_merchant_applications",
        null=True,
        on_delete=fields.RESTRICT,
    )
    store_name = fields.CharField(max_length=64)
    contact_name = fields.CharField(max_length=32)
    phone = fields.CharField(max_length=16)
    address = fields.CharField(max_length=128)
    license_no = fields.CharField(max_length=18)
    status = fields.CharEnumField(
        ApplicationStatus, max_length=16, default=ApplicationStatus.PENDING
    )
    reject_reason = fields.CharField(max_length=256, null=True)
    # Fixed by the reviewer at approval and copied onto the store.
    commission_rate_bp = fields.IntField(null=True)
    discount_bp = fields.IntField(default=0)
    store: fields.ForeignKeyNullableRelation[Store] = fields.ForeignKeyField(
        "models.Store", related_name="applications", null=True, on_delete=fields.RESTRICT
    )
    # Set by the service from its clock, so that tests can move time.
    created_at = fields.DatetimeField()
    reviewed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "merchant_application"
        indexes = (("applicant_id", "id"), ("status", "id"))
