"""Collects a transaction's notifications and writes them in one insert, inside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.notifications.models import Notification, NotificationEvent


@dataclass(slots=True)
class Outbox:
    now: datetime
    pending: list[Notification] = field(default_factory=list)

    def add(self, user_id: int, event: NotificationEvent, **payload: Any) -> None:
        self.pending.append(
            Notification(
                user_id=user_id,
                event=event,
                payload=payload,
                next_attempt_at=self.now,
                created_at=self.now,
            )
        )

    async def flush(self, conn: BaseDBAsyncClient) -> None:
        if self.pending:
            await Notification.bulk_create(self.pending, batch_size=1000, using_db=conn)
            self.pending.clear()
