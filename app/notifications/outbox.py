"""Collects a transaction's notifications and writes them in one insert, inside it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.bulk import copy_rows
from app.notifications.models import NotificationEvent, NotificationStatus

# The JSON the payload field writes (compact), from one encoder instead of one per payload.
_encode = json.JSONEncoder(separators=(",", ":")).encode
_COLUMNS = (
    ("user_id", "int"),
    ("event", "text"),
    ("payload", "jsonb"),
    ("status", "text"),
    ("attempts", "int"),
    ("next_attempt_at", "timestamptz"),
    ("created_at", "timestamptz"),
)


@dataclass(slots=True)
class Outbox:
    now: datetime
    pending: list[tuple[int, NotificationEvent, dict[str, Any]]] = field(default_factory=list)

    def add(self, user_id: int, event: NotificationEvent, **payload: Any) -> None:
        self.pending.append((user_id, event, payload))

    async def flush(self, conn: BaseDBAsyncClient) -> None:
        if not self.pending:
            return
        # Stored in UTC: SQLite compares the times as text when the sender picks what is due.
        now = self.now.astimezone(UTC)
        pending = NotificationStatus.PENDING.value
        await copy_rows(
            conn,
            "notification",
            _COLUMNS,
            [
                (user_id, event.value, _encode(payload), pending, 0, now, now)
                for user_id, event, payload in self.pending
            ],
        )
        self.pending.clear()
