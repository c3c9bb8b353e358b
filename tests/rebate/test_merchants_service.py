"""Merchant onboarding through its service (SPEC §15): applications are validated field by field,
one is pending per user, a review happens once and an approval opens exactly one store bound to
the referrer who brought the merchant (§14), with the applicant notified in the same transaction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.catalog.models import Store
from app.enums import ApplicationStatus, OrderKind, OrderStatus
from app.errors import BadInput, Conflict, NotFound
from app.members.models import User
from app.members.service import login_with_openid
from app.merchants import service
from app.merchants.models import MerchantApplication
from app.notifications.models import Notification, NotificationEvent
from app.orders.models import Order

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def _input(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "store_name": "  老王面馆 ",
        "contact_name": "王师傅",
        "phone": "13812345678",
        "address": "上海市徐汇区漕溪北路 1 号",
        "license_no": "91310104ma1fl5xx3q",
    }
    data.update(changes)
    return data


async def _user(openid: str, referrer: User | None = None) -> User:
    return await login_with_openid(
        openid, "session", referrer_code=referrer.referrer_code if referrer else None
    )


async def _approve(application_id: int, rate: int = 500) -> MerchantApplication:
    return await service.review(
        application_id, True, commission_rate_bp=rate, reject_reason=None, now=NOW
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"store_name": "   "}, "storeName"),
        ({"store_name": "店" * 65}, "storeName"),
        ({"contact_name": None}, "contactName"),
        ({"contact_name": "王" * 33}, "contactName"),
        ({"phone": "12812345678"}, "phone"),
        ({"phone": "138123456789"}, "phone"),
        ({"phone": "021-123"}, "phone"),
        ({"address": ""}, "address"),
        ({"address": "路" * 129}, "address"),
        ({"license_no": "91310104MA1FL5XX3"}, "licenseNo"),  # 17 characters
        ({"license_no": "91310104MA1FL5XXOQ"}, "licenseNo"),  # O is not in the alphabet
        ({"license_no": 310104000123456}, "licenseNo"),  # not a string
        ({"referrer_code": "NOSUCHCD"}, "referrerCode"),
    ],
)
async def test_each_bad_field_is_named_and_nothing_is_created(server, changes, field):
    applicant = await _user("applicant")
    with pytest.raises(BadInput) as raised:
        await service.apply(applicant.id, _input(**changes), now=NOW)
    assert raised.value.field == field
    assert await MerchantApplication.all().count() == 0


async def test_apply_strips_normalises_and_accepts_alternatives(server):
    applicant = await _user("applicant")
    application = await service.apply(
        applicant.id,
        # The contract's own names work as well as the Python ones.
        {
            "storeName": " 老王面馆 ",
            "contactName": " 王师傅",
            "phone": " 021-64871234 ",
            "address": "漕溪北路 1 号 ",
            "licenseNo": " 310104000123456 ",
            "referrerCode": "   ",  # blank: no code given
        },
        now=NOW,
    )
    assert (application.store_name, application.contact_name) == ("老王面馆", "王师傅")
    assert (application.phone, application.license_no) == ("021-64871234", "310104000123456")
    assert application.status == ApplicationStatus.PENDING
    assert application.referrer_id is None
    assert application.created_at == NOW
    await service.review(application.id, False, commission_rate_bp=None, reject_reason="x", now=NOW)
    second = await service.apply(applicant.id, _input(), now=NOW)
    assert second.license_no == "91310104MA1FL5XX3Q"  # upper-cased


async def test_one_pending_application_at_a_time(server):
    applicant = await _user("applicant")
    first = await service.apply(applicant.id, _input(), now=NOW)
    with pytest.raises(Conflict):
        await service.apply(applicant.id, _input(store_name="第二家"), now=NOW)
    assert await MerchantApplication.all().count() == 1
    await _approve(first.id)
    # Once reviewed, the merchant may apply for another store.
    await service.apply(applicant.id, _input(store_name="第二家"), now=NOW)
    assert await MerchantApplication.all().count() == 2


async def test_referrer_from_the_code_else_the_applicants_own_referrer(server):
    upline = await _user("upline")
    promoter = await _user("promoter")
    applicant = await _user("applicant", referrer=upline)
    other = await _user("other", referrer=upline)

    # The code scanned from a merchant-invite QR code ("m=CODE") wins over the own referrer.
    by_code = await service.apply(
        applicant.id, _input(referrer_code=f"m={promoter.referrer_code.lower()}"), now=NOW
    )
    assert by_code.referrer_id == promoter.id
    by_own = await service.apply(other.id, _input(), now=NOW)
    assert by_own.referrer_id == upline.id


async def test_self_referral_is_refused(server):
    applicant = await _user("applicant")
    with pytest.raises(BadInput) as raised:
        await service.apply(applicant.id, _input(referrer_code=applicant.referrer_code), now=NOW)
    assert raised.value.field == "referrerCode"
    assert await MerchantApplication.all().count() == 0


async def test_unknown_applicant_is_not_found(server):
    with pytest.raises(NotFound):
        await service.apply(424242, _input(), now=NOW)


async def test_approval_opens_the_store_and_notifies(server):
    promoter = await _user("promoter")
    applicant = await _user("applicant")
    first = await service.apply(applicant.id, _input(referrer_code=promoter.referrer_code), now=NOW)
    later = NOW + timedelta(hours=2)
    approved = await service.review(
        first.id, True, commission_rate_bp=650, reject_reason=None, now=later, discount_bp=9000
    )

    assert approved.status == ApplicationStatus.APPROVED
    assert (approved.commission_rate_bp, approved.reviewed_at) == (650, later)
    store = await Store.get(id=approved.store_id)
    assert store.name == "老王面馆"
    assert (store.owner_id, store.referrer_id) == (applicant.id, promoter.id)
    assert (store.commission_rate_bp, store.discount_bp) == (650, 9000)
    assert store.cashier_qr_scene.startswith("cashier_")
    assert [s.id for s in await service.list_stores_of(applicant.id)] == [store.id]

    notification = await Notification.get(user_id=applicant.id)
    assert notification.event == NotificationEvent.APPLICATION_REVIEWED
    assert notification.payload == {
        "applicationId": first.id,
        "storeName": "老王面馆",
        "storeId": store.id,
        "status": "APPROVED",
    }
    assert notification.created_at == later

    # A second store of the same merchant gets its own cashier scene.
    second = await service.apply(applicant.id, _input(store_name="老王面馆二店"), now=later)
    other_store = await Store.get(id=(await _approve(second.id)).store_id)
    assert other_store.cashier_qr_scene != store.cashier_qr_scene


async def test_rejection_records_the_reason(server):
    applicant = await _user("applicant")
    application = await service.apply(applicant.id, _input(), now=NOW)
    rejected = await service.review(
        application.id, False, commission_rate_bp=None, reject_reason="  执照模糊 ", now=NOW
    )
    assert rejected.status == ApplicationStatus.REJECTED
    assert (rejected.reject_reason, rejected.store_id) == ("执照模糊", None)
    assert await Store.all().count() == 0
    notification = await Notification.get(user_id=applicant.id)
    assert notification.payload == {
        "applicationId": application.id,
        "storeName": "老王面馆",
        "reason": "执照模糊",
        "status": "REJECTED",
    }


@pytest.mark.parametrize(
    ("approve", "rate", "reason", "field"),
    [
        (True, None, None, "commissionRateBp"),
        (True, -1, None, "commissionRateBp"),
        (True, 10001, None, "commissionRateBp"),
        (True, True, None, "commissionRateBp"),
        (False, None, None, "rejectReason"),
        (False, None, "   ", "rejectReason"),
        (False, None, "因" * 257, "rejectReason"),
    ],
)
async def test_review_arguments_are_checked_and_change_nothing(
    server, approve, rate, reason, field
):
    applicant = await _user("applicant")
    application = await service.apply(applicant.id, _input(), now=NOW)
    with pytest.raises(BadInput) as raised:
        await service.review(
            application.id, approve, commission_rate_bp=rate, reject_reason=reason, now=NOW
        )
    assert raised.value.field == field
    assert (await MerchantApplication.get(id=application.id)).status == ApplicationStatus.PENDING
    assert await Store.all().count() == 0
    assert await Notification.all().count() == 0


async def test_reviewing_twice_or_an_unknown_application(server):
    applicant = await _user("applicant")
    application = await service.apply(applicant.id, _input(), now=NOW)
    await _approve(application.id)
    with pytest.raises(Conflict):
        await _approve(application.id)
    with pytest.raises(Conflict):
        await service.review(
            application.id, False, commission_rate_bp=None, reject_reason="迟了", now=NOW
        )
    with pytest.raises(NotFound):
        await _approve(application.id + 1000)
    assert await Store.all().count() == 1
    assert await Notification.all().count() == 1


async def test_concurrent_approvals_open_one_store(server):
    applicant = await _user("applicant")
    application = await service.apply(applicant.id, _input(), now=NOW)
    outcomes = await asyncio.gather(
        _approve(application.id, 500), _approve(application.id, 700), return_exceptions=True
    )
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    approved = [o for o in outcomes if isinstance(o, MerchantApplication)]
    assert (len(approved), len(conflicts)) == (1, 1), outcomes
    stores = await Store.all()
    assert [s.id for s in stores] == [approved[0].store_id]
    assert stores[0].commission_rate_bp == approved[0].commission_rate_bp
    assert await Notification.all().count() == 1


async def test_concurrent_applications_leave_one_pending(server):
    applicant = await _user("applicant")
    outcomes = await asyncio.gather(
        *(service.apply(applicant.id, _input(), now=NOW) for _ in range(3)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, MerchantApplication) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, Conflict) for o in outcomes) == 2, outcomes
    assert await MerchantApplication.all().count() == 1


async def test_lists_are_newest_first(server):
    alice, bob = await _user("alice"), await _user("bob")
    a1 = await service.apply(alice.id, _input(), now=NOW)
    b1 = await service.apply(bob.id, _input(), now=NOW)
    await _approve(a1.id)
    a2 = await service.apply(alice.id, _input(), now=NOW)

    assert [a.id for a in await service.list_for_user(alice.id)] == [a2.id, a1.id]
    assert [a.id for a in await service.list_all(limit=10)] == [a2.id, b1.id, a1.id]
    assert [a.id for a in await service.list_all(limit=2)] == [a2.id, b1.id]
    assert [a.id for a in await service.list_all(before_id=b1.id, limit=10)] == [a1.id]
    pending = await service.list_all(status=ApplicationStatus.PENDING, limit=10)
    assert [a.id for a in pending] == [a2.id, b1.id]
    assert [a.id for a in await service.list_all(status="APPROVED", limit=10)] == [a1.id]
    with pytest.raises(BadInput) as raised:
        await service.list_all(status="MAYBE", limit=10)
    assert raised.value.field == "status"


async def test_store_turnover_counts_paid_and_completed_orders(server):
    applicant, buyer = await _user("applicant"), await _user("buyer")
    application = await service.apply(applicant.id, _input(), now=NOW)
    store_id = (await _approve(application.id)).store_id
    other_store = await Store.create(name="别家", cashier_qr_scene="cashier_other")

    assert await service.store_turnover(store_id) == {
        "store_id": store_id,
        "order_count": 0,
        "paid_fen": 0,
    }
    # Rows written directly: the turnover reads statuses and amounts only, and these orders are
    # in no queue, so the books stay balanced for the audit.
    rows = [
        (store_id, OrderStatus.PAID, 1200),
        (store_id, OrderStatus.COMPLETED, 3450),
        (store_id, OrderStatus.COMPLETED, 100),
        (store_id, OrderStatus.REFUNDED, 9900),
        (store_id, OrderStatus.PENDING_PAYMENT, 777),
        (store_id, OrderStatus.CLOSED, 888),
        (other_store.id, OrderStatus.PAID, 5000),
    ]
    for index, (sid, status, fen) in enumerate(rows):
        await Order.create(
            out_trade_no=f"T{index:08d}",
            kind=OrderKind.CASHIER,
            status=status,
            user_id=buyer.id,
            store_id=sid,
            total_fen=fen,
            payable_fen=fen,
            created_at=NOW,
        )
    expected = {"store_id": store_id, "order_count": 3, "paid_fen": 4750}
    assert await service.store_turnover(store_id) == expected
    assert await service.store_turnover(str(store_id), owner_id=applicant.id) == expected
    # Another user's store, or no store, is not found: store ids reveal nothing.
    with pytest.raises(NotFound):
        await service.store_turnover(store_id, owner_id=buyer.id)
    with pytest.raises(NotFound):
        await service.store_turnover(store_id + 1000)
