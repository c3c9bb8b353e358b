"""The notification outbox (SPEC §13): written with the money, sent after it commits."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class NotificationEvent(StrEnum):
    ENTRY_JOINED = "ENTRY_JOINED"
    PAYOUT_RECEIVED = "PAYOUT_RECEIVED"
    ENTRY_COMPLETED = "ENTRY_COMPLETED"
    LOTTERY_DRAWN = "LOTTERY_DRAWN"
    EXCHANGED = "EXCHANGED"
    CLEARED_BY_RESET = "CLEARED_BY_RESET"
    APPLICATION_REVIEWED = "APPLICATION_REVIEWED"
    COMMISSION_CREDITED = "COMMISSION_CREDITED"
    WITHDRAWAL_PAID = "WITHDRAWAL_PAID"


class NotificationStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    SKIPPED = "SKIPPED"  # no template configured for its event: recorded, not sent
    FAILED = "FAILED"  # gave up after the last retry


class Notification(Model):
    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField(
        "models.User", related_name="notifications", on_delete=fields.CASCADE
    )
    event = fields.CharEnumField(NotificationEvent, max_length=32)
    payload = fields.JSONField(default=dict)
    status = fields.CharEnumField(
        NotificationStatus, max_length=16, default=NotificationStatus.PENDING
    )
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    last_error = fields.CharField(max_length=256, null=True)
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notification"
        indexes = (("status", "next_attempt_at"), ("user_id", "id"))
