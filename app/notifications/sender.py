"""Sends the outbox as WeChat subscribe messages, after the money committed, with retries."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from app.errors import DomainError
from app.members.models import User
from app.notifications.models import Notification, NotificationStatus
from app.notifications.templates import load_notification_settings, template_data
from app.wechat.client import WeChatGateway

log = logging.getLogger("rebate.notifications")

LEASE = timedelta(minutes=2)  # a claimed message is retried if its sender dies
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=6)


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … doubling, at most 6 h."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_RETRY)


async def _claim(now: datetime, limit: int) -> list[Notification]:
    async with in_transaction() as conn:
        due = await (
            Notification.filter(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
            .using_db(conn)
            .order_by("id")
            .limit(limit)
            .select_for_update(skip_locked=True)
        )
        if due:
            await (
                Notification.filter(id__in=[n.id for n in due])
                .using_db(conn)
                .update(next_attempt_at=now + LEASE)
            )
    return due


async def send_due(gateway: WeChatGateway, now: datetime, *, limit: int = 100) -> int:
    """Send what is due; returns how many were handled (sent, skipped or rescheduled)."""
    due = await _claim(now, limit)
    if not due:
        return 0
    templates = (await load_notification_settings()).templates
    openids = dict(
        await User.filter(id__in=list({n.user_id for n in due})).values_list("id", "openid")
    )
    for note in due:
        config = templates.get(note.event)
        if config is None:
            await Notification.filter(id=note.id).update(status=NotificationStatus.SKIPPED)
            continue
        try:
            await gateway.send_subscribe_message(
                openids[note.user_id],
                config.template_id,
                template_data(config, note.payload),
                page=config.page,
            )
        except DomainError as exc:
            attempts = note.attempts + 1
            failed = attempts >= MAX_ATTEMPTS
            log.warning("notification %s failed (attempt %s): %s", note.id, attempts, exc.message)
            await Notification.filter(id=note.id).update(
                attempts=attempts,
                last_error=exc.message[:256],
                status=NotificationStatus.FAILED if failed else NotificationStatus.PENDING,
                next_attempt_at=now + retry_delay(attempts),
            )
            continue
        await Notification.filter(id=note.id).update(
            status=NotificationStatus.SENT, sent_at=now, attempts=note.attempts + 1
        )
    return len(due)
