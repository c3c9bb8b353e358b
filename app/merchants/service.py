"""Merchant onboarding (商家入驻, SPEC §15): apply, review, and the owner's view of their store.

An approval opens the store, binds it to the referrer who brought the merchant (§14: merchant
referral) and notifies the applicant, all in one transaction with the application's status.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from tortoise.functions import Count, Sum
from tortoise.transactions import in_transaction

from app.catalog.models import Store
from app.enums import ApplicationStatus, OrderStatus
from app.errors import BadInput, Conflict, NotFound
from app.ids import parse_id
from app.members.models import User
from app.members.service import _code_of
from app.merchants.models import MerchantApplication
from app.money import BP_SCALE
from app.notifications.models import NotificationEvent
from app.notifications.outbox import Outbox
from app.orders.models import Order

# A mainland mobile number, or a landline with its area code (some shops only have one).
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
# 统一社会信用代码 (GB 32100-2015): I, O, Z, S, V never appear; or the 15-digit 注册号 that
# licences issued before 2015 still carry.
_CREDIT_CODE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")
_OLD_REGISTRATION_NO = re.compile(r"^\d{15}$")

_REJECT_REASON_MAX = 256
# Orders that count as turnover: paid and not refunded (a refund moves the order to REFUNDED).
_TURNOVER_STATUSES = (OrderStatus.PAID, OrderStatus.COMPLETED)


def _field(data: dict[str, Any], snake: str, camel: str) -> Any:
    """The input's value under its Python name or its contract (camelCase) name."""
    return data[snake] if snake in data else data.get(camel)


def _text(data: dict[str, Any], snake: str, camel: str, max_len: int) -> str:
    """A required text field, stripped, 1 to `max_len` characters, or BadInput naming it."""
    value = _field(data, snake, camel)
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{camel} is required", field=camel)
    value = value.strip()
    if len(value) > max_len:
        raise BadInput(f"{camel} must be at most {max_len} characters", field=camel)
    return value


def _bp(value: Any, name: str) -> int:
    """A rate in basis points, 0 to 100 %."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= BP_SCALE:
        raise BadInput(f"{name} must be an integer between 0 and {BP_SCALE}", field=name)
    return value


def _validated_application(data: dict[str, Any]) -> dict[str, Any]:
    """Every field of MerchantApplicationInput checked and normalised; nothing is written yet."""
    fields = {
        "store_name": _text(data, "store_name", "storeName", 64),
        "contact_name": _text(data, "contact_name", "contactName", 32),
        "phone": _text(data, "phone", "phone", 16),
        "address": _text(data, "address", "address", 128),
        # Licences print the code in capitals; people type it in either case.
        "license_no": _text(data, "license_no", "licenseNo", 18).upper(),
    }
    if not (_MOBILE.match(fields["phone"]) or _LANDLINE.match(fields["phone"])):
        raise BadInput(
            "phone must be a mainland mobile number or a landline with its area code",
            field="phone",
        )
    if not (
        _CREDIT_CODE.match(fields["license_no"]) or _OLD_REGISTRATION_NO.match(fields["license_no"])
    ):
        raise BadInput(
            "licenseNo must be an 18-character unified social credit code "
            "or a 15-digit registration number",
            field="licenseNo",
        )
    return fields


async def apply(user_id: int, data: dict[str, Any], *, now: datetime) -> MerchantApplication:
    """File a merchant application (applyMerchant); one PENDING application per user at a time.

    `data` holds MerchantApplicationInput under snake_case or camelCase names. The referrer is the
    user named by `referrerCode` (typed, or scanned from a merchant-invite code "m=CODE"), else
    the applicant's own referrer.
    """
    fields = _validated_application(data)
    raw_code = _field(data, "referrer_code", "referrerCode")
    if raw_code is not None and not isinstance(raw_code, str):
        raise BadInput("referrerCode must be a string", field="referrerCode")
    code = _code_of(raw_code) if raw_code and raw_code.strip() else None
    async with in_transaction() as conn:
        # Locking the applicant serialises their concurrent applications, so that the
        # one-pending check below cannot be passed twice.
        applicant = await User.filter(id=user_id).using_db(conn).select_for_update().first()
        if applicant is None:
            raise NotFound(f"user {user_id} not found")
        referrer_id = applicant.referrer_id
        if code:
            referrer = await User.filter(referrer_code=code).using_db(conn).first()
            if referrer is None:
                raise BadInput("referrerCode names no user", field="referrerCode")
            if referrer.id == applicant.id:
                raise BadInput("a merchant cannot refer themselves", field="referrerCode")
            referrer_id = referrer.id
        pending = MerchantApplication.filter(
            applicant_id=applicant.id, status=ApplicationStatus.PENDING
        )
        if await pending.using_db(conn).exists():
            raise Conflict("you already have an application waiting for review")
        return await MerchantApplication.create(
            **fields,
            applicant_id=applicant.id,
            referrer_id=referrer_id,
            status=ApplicationStatus.PENDING,
            created_at=now,
            using_db=conn,
        )


async def review(
    application_id: Any,
    approve: bool,
    *,
    commission_rate_bp: int | None,
    reject_reason: str | None,
    now: datetime,
    discount_bp: int | None = None,
) -> MerchantApplication:
    """Approve (opening the store) or reject a PENDING application (reviewMerchantApplication).

    Approval needs the platform's commission rate (抽成); `discount_bp`, the discount agreed with
    the merchant, is optional (the contract does not carry it yet) and defaults to none. Rejection
    needs a reason. The applicant is notified in the same transaction.
    """
    pk = parse_id(application_id, "id")
    rate = discount = 0
    reason = ""
    # The arguments are checked before any lock is taken: a bad call changes nothing.
    if approve:
        if commission_rate_bp is None:
            raise BadInput("commissionRateBp is required to approve", field="commissionRateBp")
        rate = _bp(commission_rate_bp, "commissionRateBp")
        discount = _bp(discount_bp if discount_bp is not None else 0, "discountBp")
    else:
        reason = reject_reason.strip() if isinstance(reject_reason, str) else ""
        if not reason:
            raise BadInput("rejectReason is required to reject", field="rejectReason")
        if len(reason) > _REJECT_REASON_MAX:
            raise BadInput(
                f"rejectReason must be at most {_REJECT_REASON_MAX} characters",
                field="rejectReason",
            )
    outbox = Outbox(now)
    async with in_transaction() as conn:
        # The row lock makes a concurrent review wait and then see the status set here: two
        # approvals at once open one store, the other gets Conflict.
        application = (
            await MerchantApplication.filter(id=pk).using_db(conn).select_for_update().first()
        )
        if application is None:
            raise NotFound(f"merchant application {application_id} not found")
        if application.status != ApplicationStatus.PENDING:
            raise Conflict(
                f"merchant application {application.id} is already {application.status.value}"
            )
        application.reviewed_at = now
        payload: dict[str, Any] = {
            "applicationId": application.id,
            "storeName": application.store_name,
        }
        if approve:
            store = await Store.create(
                name=application.store_name,
                owner_id=application.applicant_id,
                referrer_id=application.referrer_id,
                commission_rate_bp=rate,
                discount_bp=discount,
                # As app.catalog.service does: an unguessable scene for the cashier's QR code.
                cashier_qr_scene=f"cashier_{secrets.token_hex(6)}",
                using_db=conn,
            )
            application.status = ApplicationStatus.APPROVED
            application.commission_rate_bp = rate
            application.discount_bp = discount
            application.store_id = store.id
            payload["storeId"] = store.id
        else:
            application.status = ApplicationStatus.REJECTED
            application.reject_reason = reason
            payload["reason"] = reason
        payload["status"] = application.status.value
        await application.save(
            update_fields=[
                "status",
                "reject_reason",
                "commission_rate_bp",
                "discount_bp",
                "store_id",
                "reviewed_at",
            ],
            using_db=conn,
        )
        outbox.add(application.applicant_id, NotificationEvent.APPLICATION_REVIEWED, **payload)
        await outbox.flush(conn)
    return application


async def list_for_user(user_id: int) -> list[MerchantApplication]:
    """The user's own applications, newest first (myMerchantApplications)."""
    return await MerchantApplication.filter(applicant_id=user_id).order_by("-id")


async def list_all(
    *, status: ApplicationStatus | str | None = None, before_id: int | None = None, limit: int
) -> list[MerchantApplication]:
    """Applications for the operator, newest first, `before_id` being the page cursor."""
    query = MerchantApplication.all()
    if status is not None:
        try:
            query = query.filter(status=ApplicationStatus(status))
        except ValueError:
            raise BadInput(f"unknown application status {status!r}", field="status") from None
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(limit)


async def list_stores_of(user_id: int) -> list[Store]:
    """The stores a user owns (myStores), oldest first."""
    return await Store.filter(owner_id=user_id).order_by("id")


async def store_turnover(store_id: Any, *, owner_id: int | None = None) -> dict[str, int]:
    """The store's turnover: paid or completed orders, refunded ones excluded, and their cash.

    With `owner_id`, only that user's store is found: another user's store is NotFound rather
    than Forbidden, so that store ids reveal nothing.
    """
    pk = parse_id(store_id, "storeId")
    store = await Store.filter(id=pk).first()
    if store is None or (owner_id is not None and store.owner_id != owner_id):
        raise NotFound(f"store {store_id} not found")
    # Without a GROUP BY the aggregates come back as one row, None when there is no order.
    row = (
        await Order.filter(store_id=store.id, status__in=_TURNOVER_STATUSES)
        .annotate(orders=Count("id"), paid=Sum("payable_fen"))
        .values("orders", "paid")
    )[0]
    return {
        "store_id": store.id,
        "order_count": int(row["orders"] or 0),
        "paid_fen": int(row["paid"] or 0),
    }
