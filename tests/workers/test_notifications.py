"""Notifications (SPEC §13): recorded with the money, sent afterwards, retried, never blocking."""

from __future__ import annotations

from datetime import timedelta

from app.notifications.models import Notification, NotificationEvent, NotificationStatus
from app.notifications.sender import MAX_ATTEMPTS, send_due
from app.rebate.service import settle_orders
from app.wechat.client import WeChatGateway
from tests.support.orders import NOW, paid_orders

TEMPLATES = """mutation($t: [NotificationTemplateInput!]!) {
  updateNotificationTemplates(templates: $t) { event templateId page fields { key source } } }"""


def _fake(server):
    return server.app.routes[-1].app.state.wechat


async def _worked_example(count: int = 3) -> None:
    ids = await paid_orders(count, prefix="note")
    await settle_orders(ids, now=NOW)


async def test_the_money_records_its_notifications(server):
    await _worked_example()
    events = [(n.user_id, n.event) for n in await Notification.all().order_by("id")]
    # A joins; B pays A 10920 and joins; C pays A the rest (A completes) and joins.
    assert events == [
        (1, NotificationEvent.ENTRY_JOINED),
        (1, NotificationEvent.PAYOUT_RECEIVED),
        (2, NotificationEvent.ENTRY_JOINED),
        (1, NotificationEvent.PAYOUT_RECEIVED),
        (1, NotificationEvent.ENTRY_COMPLETED),
        (3, NotificationEvent.ENTRY_JOINED),
    ]
    payout = await Notification.filter(event=NotificationEvent.PAYOUT_RECEIVED).first()
    assert payout.payload["amountFen"] == 10920
    assert payout.status == NotificationStatus.PENDING


async def test_configured_events_are_sent_others_skipped(server, admin):
    await admin(
        TEMPLATES,
        t=[
            {
                "event": "PAYOUT_RECEIVED",
                "templateId": "TPL-PAYOUT",
                "page": "pages/queue/index",
                "fields": [
                    {"key": "amount1", "source": "amountYuan"},
                    {"key": "thing2", "source": "queueKey"},
                ],
            }
        ],
    )
    await _worked_example()
    before = len(_fake(server).messages)
    assert await send_due(server.services.wechat, NOW) == 6
    messages = _fake(server).messages[before:]
    assert [m["template_id"] for m in messages] == ["TPL-PAYOUT", "TPL-PAYOUT"]
    assert messages[0]["touser"] == "note-0"  # A's openid
    assert messages[0]["page"] == "pages/queue/index"
    assert messages[0]["data"] == {"amount1": {"value": "109.20"}, "thing2": {"value": "mall"}}
    statuses = sorted(n.status.value for n in await Notification.all())
    assert statuses == ["SENT", "SENT", "SKIPPED", "SKIPPED", "SKIPPED", "SKIPPED"]
    assert await send_due(server.services.wechat, NOW) == 0  # nothing twice


async def test_a_failing_send_is_retried_with_backoff_then_given_up(server, admin):
    await admin(TEMPLATES, t=[{"event": "ENTRY_JOINED", "templateId": "TPL-JOIN"}])
    await _worked_example(1)
    before = len(_fake(server).messages)
    unreachable = WeChatGateway(
        type(server.services.credentials)(
            **{
                **server.services.credentials.__dict__,
                "api_base_url": "http://127.0.0.1:9/mock/wx/",
            }
        ),
        timeout=2,
    )
    now = NOW
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert await send_due(unreachable, now) == 1
        note = await Notification.get()
        assert note.attempts == attempt
        assert "unreachable" in note.last_error
        # Not due again before its delay: 30 s, then doubling.
        assert await send_due(unreachable, now + timedelta(seconds=29)) == 0
        now = note.next_attempt_at
    assert note.status == NotificationStatus.FAILED
    assert await send_due(server.services.wechat, now + timedelta(days=1)) == 0
    assert _fake(server).messages[before:] == []


async def test_the_consumer_sees_their_notifications(server, anonymous, admin):
    from tests.support.client import buy, create_product, pay_and_settle

    product = await create_product(admin, "礼盒", 100)
    buyer = await anonymous.login("x")
    await pay_and_settle(buyer, await buy(buyer, product))
    page = (await buyer("{ myNotifications { items { event status payload } } }"))[
        "myNotifications"
    ]
    assert [n["event"] for n in page["items"]] == ["ENTRY_JOINED"]
    assert page["items"][0]["payload"]["entitlementFen"] == 130
    bad = await admin.error(TEMPLATES, t=[{"event": "NOPE", "templateId": "x"}])
    assert bad.code == "BAD_USER_INPUT"
