"""Resolver bodies: check who is asking, call one service, shape the answer."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import strawberry

from app.catalog import service as catalog
from app.catalog.models import Product, Store
from app.enums import EntryStatus, ExchangeTarget, OrderStatus
from app.errors import BadInput, Conflict, Forbidden, NotFound, UpstreamError
from app.ids import parse_id
from app.members import qrcodes
from app.members import service as members
from app.members.models import MemberLevel, TeamLevel, User
from app.members.tokens import issue_token
from app.orders import service as orders
from app.orders.models import Order, OrderLine
from app.rebate import actions, progress
from app.rebate.models import QueueEntry
from app.rebate.settings import load_rebate_settings, update_rebate_settings
from app.wallet import service as wallet_service
from graphql_schema import types as t
from graphql_schema.context import Context
from graphql_schema.convert import (
    decode_cursor,
    input_to_patch,
    opt_id,
    page_of,
    page_size,
    rule_type,
    settings_type,
)
from graphql_schema.page_cache import PageArguments

log = logging.getLogger("rebate.api")


def _id(value: int) -> strawberry.ID:
    return strawberry.ID(str(value))


def _given(value: Any) -> Any:
    return None if value is strawberry.UNSET else value


async def user_type(ctx: Context, user: User) -> t.User:
    member_level = team_level = None
    if user.member_level_id:
        level = await ctx.loaders.member_levels.load(user.member_level_id)
        if level:
            member_level = t.MemberLevel(id=_id(level.id), name=level.name, rank=level.rank)
    if user.team_level_id:
        team = await ctx.loaders.team_levels.load(user.team_level_id)
        if team:
            team_level = t.TeamLevel(
                id=_id(team.id), name=team.name, rate_bp=team.rate_bp, shareholder=team.shareholder
            )
    return t.User(
        id=_id(user.id),
        nickname=user.nickname,
        avatar_url=user.avatar_url,
        referrer_code=user.referrer_code,
        referrer_id=opt_id(user.referrer_id),
        member_level=member_level,
        team_level=team_level,
    )


def product_type(product: Product, *, operator: bool) -> t.Product:
    """Cost and supply price are the operator's business: null for anyone else."""
    return t.Product(
        id=_id(product.id),
        name=product.name,
        price_fen=product.price_fen,
        cost_fen=product.cost_fen if operator else None,
        supply_price_fen=product.supply_price_fen if operator else None,
        source=product.source,
        store_id=opt_id(product.store_id),
        listed=product.listed,
        rebate=rule_type(catalog.product_rule(product)),
    )


async def order_type(ctx: Context, order: Order) -> t.Order:
    lines = await ctx.loaders.order_lines.load(order.id)
    pay_params = None
    # Only the buyer pays: a store owner looking at the store's orders gets no payment handle.
    buyer = ctx.user_id == order.user_id
    if order.status == OrderStatus.PENDING_PAYMENT and order.prepay_id and buyer:
        params = ctx.services.wechat.pay_params(order.prepay_id)
        pay_params = t.PayParams(
            app_id=params["appId"],
            time_stamp=params["timeStamp"],
            nonce_str=params["nonceStr"],
            package=params["package"],
            sign_type=params["signType"],
            pay_sign=params["paySign"],
        )
    return t.Order(
        id=_id(order.id),
        out_trade_no=order.out_trade_no,
        kind=order.kind,
        status=order.status,
        user_id=_id(order.user_id),
        store_id=opt_id(order.store_id),
        total_fen=order.total_fen,
        deduction_fen=order.deduction_fen,
        payable_fen=order.payable_fen,
        lines=[
            t.OrderLine(
                id=_id(line.id),
                product_id=opt_id(line.product_id),
                quantity=line.quantity,
                amount_fen=line.amount_fen,
                paid_fen=line.paid_fen,
                queue_key=line.queue_key,
            )
            for line in lines
        ],
        settled=order.settled,
        pay_params=pay_params,
        created_at=order.created_at,
        paid_at=order.paid_at,
        completed_at=order.completed_at,
    )


def entry_type(view: progress.EntryView) -> t.QueueEntry:
    entry = view.entry
    return t.QueueEntry(
        id=_id(entry.id),
        queue_key=entry.queue_key,
        order_id=_id(entry.order_id),
        order_line_id=_id(entry.line_id),
        status=EntryStatus(entry.status),
        paid_fen=entry.paid_fen,
        ratio_bp=entry.ratio_bp,
        ratio_source=entry.ratio_source,
        entitlement_fen=entry.entitlement_fen,
        rewarded_fen=view.rewarded_fen,
        remaining_fen=view.remaining_fen,
        progress_bp=view.progress_bp,
        number=view.number,
        position=view.position,
        amount_ahead_fen=view.amount_ahead_fen,
        estimated_wait_days=view.estimated_wait_days,
        lottery_available=view.lottery_available,
        created_at=entry.created_at,
        ended_at=entry.ended_at,
        entry_pk=entry.id,
        show_process=view.show_process,
    )


# --- queries -------------------------------------------------------------------------------------


async def me(ctx: Context) -> t.User:
    return await user_type(ctx, await members.get_user(ctx.require_user()))


async def products(
    ctx: Context, store_id: Any, first: int | None, after: str | None
) -> t.ProductPage:
    size = page_size(first)
    rows = await catalog.list_products(
        store_id=store_id,
        listed_only=not ctx.is_admin,
        after_id=decode_cursor("product", after),
        limit=size + 1,
    )
    rows, cursor = page_of(rows, size, "product")
    return t.ProductPage(
        items=[product_type(p, operator=ctx.is_admin) for p in rows],
        next_cursor=cursor,
    )


async def order(ctx: Context, order_id: Any) -> t.Order:
    ctx.require_any()
    found = await orders.get_order(order_id)
    if not ctx.is_admin and found.user_id != ctx.user_id:
        # Someone else's order looks exactly like a missing one.
        raise NotFound(f"order {order_id} not found")
    return await order_type(ctx, found)


async def my_orders(ctx: Context, first: int | None, after: str | None) -> t.OrderPage:
    user_id = ctx.require_user()
    return await _order_page(ctx, Order.filter(user_id=user_id), first, after)


async def _order_page(
    ctx: Context, query: Any, first: int | None, after: str | None
) -> t.OrderPage:
    """A page of orders, newest first."""
    size = page_size(first)
    before = decode_cursor("order", after)
    if before is not None:
        query = query.filter(id__lt=before)
    rows = await query.order_by("-id").limit(size + 1)
    rows, cursor = page_of(rows, size, "order")
    return t.OrderPage(
        items=list(await asyncio.gather(*(order_type(ctx, o) for o in rows))),
        next_cursor=cursor,
    )


async def entry(ctx: Context, entry_id: Any) -> t.QueueEntry:
    ctx.require_any()
    found = await progress.get_entry(parse_id(entry_id, "id"))
    if not ctx.is_admin and found.user_id != ctx.user_id:
        raise NotFound(f"entry {entry_id} not found")
    settings = await ctx.loaders.rebate_settings()
    return entry_type(await progress.entry_view(found, settings, now=ctx.now()))


async def my_entries(
    ctx: Context, status: EntryStatus | None, first: int | None, after: str | None
) -> t.EntryPage:
    user_id = ctx.require_user()
    size = page_size(first)
    before = decode_cursor("entry", after)
    read = ctx.page_rows
    if read is not None and read[0] == PageArguments(status, size, before):
        rows = read[1]
    else:
        rows = await progress.list_entries(user_id, status=status, before_id=before, limit=size + 1)
    rows, cursor = page_of(rows, size, "entry")
    settings = await ctx.loaders.rebate_settings(rows[0].settings_revision if rows else None)
    views = await progress.entry_views(rows, settings, now=ctx.now())
    return t.EntryPage(items=[entry_type(view) for view in views], next_cursor=cursor)


async def entry_process(
    ctx: Context, entry: t.QueueEntry, first: int, after: str | None
) -> t.PayoutPage:
    size = page_size(first)
    # One page more than asked tells whether there is a next page.
    views = await ctx.loaders.payouts.load(
        (entry.entry_pk, size + 1, decode_cursor("payout", after))
    )
    views, cursor = page_of(views, size, "payout", key=lambda row: row.payout_id)
    return t.PayoutPage(
        items=[
            t.Payout(
                from_order_id=_id(v.from_order_id),
                amount_fen=v.amount_fen,
                at=v.at,
                payer_nickname=v.payer_nickname,
                payer_avatar_url=v.payer_avatar_url,
            )
            for v in views
        ],
        next_cursor=cursor,
    )


async def rebate_settings(ctx: Context) -> t.RebateSettings:
    ctx.require_admin()
    return settings_type(await load_rebate_settings())


async def rebate_display(ctx: Context) -> t.RebateDisplay:
    settings = await load_rebate_settings()
    converted = settings_type(settings)
    return t.RebateDisplay(
        display_name=settings.display_name,
        exchange_button_name=settings.exchange_button_name,
        display=converted.display,
    )


async def member_levels(ctx: Context) -> list[t.MemberLevel]:
    return [
        t.MemberLevel(id=_id(level.id), name=level.name, rank=level.rank)
        for level in await MemberLevel.all().order_by("rank", "id")
    ]


# --- mutations -----------------------------------------------------------------------------------


async def login(
    ctx: Context,
    code: str,
    referrer_code: str | None,
    nickname: str | None,
    avatar_url: str | None,
) -> t.AuthPayload:
    if nickname is not None and len(nickname) > 64:
        raise BadInput("nickname is at most 64 characters", field="nickname")
    if avatar_url is not None and len(avatar_url) > 512:
        raise BadInput("avatarUrl is at most 512 characters", field="avatarUrl")
    session = await ctx.services.wechat.code_to_session(code)
    user = await members.login_with_openid(
        session.openid,
        session.session_key,
        unionid=session.unionid,
        nickname=nickname,
        avatar_url=avatar_url,
        referrer_code=referrer_code,
    )
    return t.AuthPayload(
        token=issue_token(user.id, ctx.settings.secret_key), user=await user_type(ctx, user)
    )


async def upsert_product(ctx: Context, data: Any) -> t.Product:
    ctx.require_admin()
    return product_type(await catalog.upsert_product(input_to_patch(data)), operator=True)


async def update_rebate_settings_mutation(ctx: Context, data: Any) -> t.RebateSettings:
    ctx.require_admin()
    return settings_type(await update_rebate_settings(input_to_patch(data), now=ctx.now()))


async def create_order(ctx: Context, data: Any) -> t.Order:
    user_id = ctx.require_user()
    lines = orders.parse_line_requests([(line.product_id, line.quantity) for line in data.lines])
    created = await orders.create_order(
        user_id,
        lines,
        points_to_use=_given(data.points_to_use),
        love_value_to_use=_given(data.love_value_to_use),
        now=ctx.now(),
    )
    names = (
        await OrderLine.filter(order_id=created.id)
        .order_by("line_no")
        .values_list("name", flat=True)
    )
    return await _open_payment(ctx, created, " ".join(names))


async def audit(ctx: Context) -> t.AuditReport:
    from app.ledger.audit import audit as run_audit

    ctx.require_admin()
    violations = await run_audit()
    return t.AuditReport(ok=not violations, violations=violations)


def store_type(store: Store) -> t.Store:
    return t.Store(
        id=_id(store.id),
        name=store.name,
        owner_id=opt_id(store.owner_id),
        referrer_id=opt_id(store.referrer_id),
        commission_rate_bp=store.commission_rate_bp,
        goods_rebate=rule_type(catalog.store_goods_rule(store)),
        cashier_rebate=rule_type(catalog.store_cashier_rule(store)),
        cashier_qr_scene=store.cashier_qr_scene,
        store_pk=store.id,
        owner_pk=store.owner_id,
    )


def _sees_store(ctx: Context, store: t.Store) -> bool:
    return ctx.is_admin or (ctx.user_id is not None and ctx.user_id == store.owner_pk)


async def store_turnover(ctx: Context, store: t.Store) -> t.StoreTurnover | None:
    from app.merchants.service import store_turnover as turnover_of

    if not _sees_store(ctx, store):
        return None
    figures = await turnover_of(store.store_pk)
    return t.StoreTurnover(order_count=figures["order_count"], paid_fen=figures["paid_fen"])


async def store_orders(
    ctx: Context, store: t.Store, first: int | None, after: str | None
) -> t.OrderPage | None:
    if not _sees_store(ctx, store):
        return None
    return await _order_page(ctx, Order.filter(store_id=store.store_pk), first, after)


async def _entry_answer(ctx: Context, entry: QueueEntry) -> t.QueueEntry:
    settings = await load_rebate_settings()
    return entry_type(await progress.entry_view(entry, settings, now=ctx.now()))


async def _open_payment(ctx: Context, created: Order, body: str) -> t.Order:
    """Place the order with WeChat Pay, or settle it at once when nothing is left to pay (§4)."""
    if created.payable_fen > 0:
        user = await members.get_user(created.user_id)
        try:
            prepay_id = await ctx.services.wechat.unified_order(
                out_trade_no=created.out_trade_no,
                total_fee=created.payable_fen,
                body=body,
                openid=user.openid,
                client_ip=ctx.request.client.host if ctx.request.client else "127.0.0.1",
            )
        except UpstreamError:
            await orders.close_unpaid(created.id)
            raise
        await orders.set_prepay_id(created.id, prepay_id)
        created.prepay_id = prepay_id
    else:
        ctx.services.jobs.settle_soon(created.id)
    return await order_type(ctx, created)


async def create_cashier_order(ctx: Context, data: Any) -> t.Order:
    user_id = ctx.require_user()
    created = await orders.create_cashier_order(
        user_id, data.store_id, data.amount_fen, now=ctx.now()
    )
    # A cashier payment is complete when paid: its settlement follows the payment.
    return await _open_payment(ctx, created, "收银台买单")


async def confirm_receipt(ctx: Context, order_id: Any) -> t.Order:
    user_id = ctx.require_user()
    completed = await orders.complete_order(order_id, now=ctx.now(), buyer_id=user_id)
    ctx.services.jobs.settle_soon(completed.id)
    return await order_type(ctx, completed)


async def draw_lottery(ctx: Context, entry_id: Any) -> t.QueueEntry:
    user_id = ctx.require_user()
    drawn = await actions.draw_lottery(
        parse_id(entry_id, "entryId"), user_id=user_id, now=ctx.now(), rng=ctx.services.rng
    )
    return await _entry_answer(ctx, drawn)


async def exchange_entry(ctx: Context, entry_id: Any, target: ExchangeTarget) -> t.QueueEntry:
    user_id = ctx.require_user()
    exchanged = await actions.exchange_entry(
        parse_id(entry_id, "entryId"), ExchangeTarget(target), user_id=user_id, now=ctx.now()
    )
    return await _entry_answer(ctx, exchanged)


async def upsert_member_level(ctx: Context, data: Any) -> t.MemberLevel:
    ctx.require_admin()
    level = await members.upsert_member_level(input_to_patch(data))
    return t.MemberLevel(id=_id(level.id), name=level.name, rank=level.rank)


async def set_user_levels(ctx: Context, user_id: Any, changes: dict[str, Any]) -> t.User:
    ctx.require_admin()
    return await user_type(ctx, await members.set_user_levels(user_id, changes))


async def enable_rebate_for_all_products(ctx: Context) -> int:
    ctx.require_admin()
    return await catalog.enable_rebate_for_all_products()


async def upsert_store(ctx: Context, data: Any) -> t.Store:
    ctx.require_admin()
    return store_type(await catalog.upsert_store(input_to_patch(data)))


async def my_stores(ctx: Context) -> list[t.Store]:
    user_id = ctx.require_user()
    return [store_type(s) for s in await Store.filter(owner_id=user_id).order_by("id")]


async def complete_order_as(ctx: Context, order_id: Any) -> t.Order:
    """The operator completes any order; a store's owner the orders of their store."""
    ctx.require_any()
    owner = None if ctx.is_admin else ctx.user_id
    completed = await orders.complete_order(order_id, now=ctx.now(), store_owner_id=owner)
    ctx.services.jobs.settle_soon(completed.id)
    return await order_type(ctx, completed)


async def refund_order(ctx: Context, order_id: Any, reason: str | None) -> t.Order:
    ctx.require_admin()
    if reason is not None and len(reason) > 256:
        raise BadInput("reason is at most 256 characters", field="reason")
    order_pk = parse_id(order_id, "orderId")
    found = await orders.get_order(order_pk)
    if found.status not in (OrderStatus.PAID, OrderStatus.COMPLETED):
        raise Conflict(f"order {found.id} is {found.status.value}; only a paid order is refunded")
    if found.payable_fen and found.transaction_id:
        # WeChat first: its refund is idempotent by out_refund_no, so a retry after a failure
        # below refunds once, and our books never show a refund WeChat did not make.
        await ctx.services.wechat.refund(
            out_trade_no=found.out_trade_no,
            out_refund_no=orders.out_refund_no_for(found.out_trade_no),
            total_fee=found.payable_fen,
            refund_fee=found.payable_fen,
            reason=reason,
        )
    refunded = await actions.refund_order(order_pk, reason=reason, now=ctx.now())
    return await order_type(ctx, refunded)


async def reset_queues_now(ctx: Context) -> int:
    ctx.require_admin()
    now = ctx.now()
    return await actions.reset_queues(f"manual:{now.isoformat()}:{secrets.token_hex(4)}", now=now)


async def wallet(ctx: Context) -> t.Wallet:
    view = await wallet_service.wallet_of(ctx.require_user())
    return t.Wallet(
        balance_fen=view.balance_fen,
        pending_commission_fen=view.pending_commission_fen,
        points=view.points,
        love_value=view.love_value,
        love_value_frozen=view.love_value_frozen,
    )


async def transfer_points(ctx: Context, to_user_id: Any, points: int) -> t.Wallet:
    user_id = ctx.require_user()
    # Each call is its own transfer; the key only guards against the same call being applied twice.
    key = f"points-transfer:{user_id}:{secrets.token_hex(12)}"
    await wallet_service.transfer_points(user_id, to_user_id, points, key=key)
    return await wallet(ctx)


async def queue_stats(ctx: Context, queue_key: str | None) -> list[t.QueueStats]:
    from app.health.service import queue_health

    ctx.require_admin()
    settings = await load_rebate_settings()
    today = ctx.now().astimezone(ctx.settings.timezone).date()
    return [
        t.QueueStats(
            queue_key=h.queue_key,
            waiting_entries=h.waiting_entries,
            liability_fen=h.liability_fen,
            returned_fen=h.returned_fen,
            inflow_per_day_fen=h.inflow_per_day_fen,
            payout_per_day_fen=h.payout_per_day_fen,
            repaid_fraction_bp=h.repaid_fraction_bp,
            estimated_wait_days_for_new_entry=h.estimated_wait_days_for_new_entry,
        )
        for h in await queue_health(settings, today=today, queue_key=queue_key)
    ]


def _qr_type(image: qrcodes.QrCodeImage) -> t.QrCode:
    return t.QrCode(scene=image.scene, page=image.page, image_base64=image.image_base64)


async def referral_qr_code(ctx: Context) -> t.QrCode:
    user = await members.get_user(ctx.require_user())
    scene = qrcodes.referral_scene(user.referrer_code)
    return _qr_type(
        await qrcodes.mini_program_code(ctx.services.wechat, scene, qrcodes.REFERRAL_PAGE)
    )


async def merchant_invite_qr_code(ctx: Context) -> t.QrCode:
    user = await members.get_user(ctx.require_user())
    scene = qrcodes.merchant_invite_scene(user.referrer_code)
    return _qr_type(
        await qrcodes.mini_program_code(ctx.services.wechat, scene, qrcodes.MERCHANT_INVITE_PAGE)
    )


async def cashier_qr_code(ctx: Context, store_id: Any) -> t.QrCode:
    ctx.require_any()
    store = await catalog.get_store(store_id)
    if not ctx.is_admin and store.owner_id != ctx.user_id:
        raise Forbidden("only the operator or the store's owner prints its cashier code")
    return _qr_type(
        await qrcodes.mini_program_code(
            ctx.services.wechat, store.cashier_qr_scene, qrcodes.CASHIER_PAGE
        )
    )


def _template_types(settings: Any) -> list[t.NotificationTemplate]:
    return [
        t.NotificationTemplate(
            event=event.value,
            template_id=config.template_id,
            page=config.page,
            fields=[t.TemplateField(key=k, source=v) for k, v in config.fields.items()],
        )
        for event, config in sorted(settings.templates.items())
    ]


async def notification_templates(ctx: Context) -> list[t.NotificationTemplate]:
    from app.notifications.templates import load_notification_settings

    ctx.require_admin()
    return _template_types(await load_notification_settings())


async def update_notification_templates(
    ctx: Context, templates: list[Any]
) -> list[t.NotificationTemplate]:
    from app.notifications.templates import replace_templates

    ctx.require_admin()
    items = [
        {
            "event": item.event,
            "template_id": item.template_id,
            "page": item.page,
            "fields": {f.key: f.source for f in item.fields},
        }
        for item in templates
    ]
    return _template_types(await replace_templates(items))


async def my_notifications(
    ctx: Context, first: int | None, after: str | None
) -> t.NotificationPage:
    from app.notifications.models import Notification

    user_id = ctx.require_user()
    size = page_size(first)
    query = Notification.filter(user_id=user_id)
    before = decode_cursor("notification", after)
    if before is not None:
        query = query.filter(id__lt=before)
    rows = await query.order_by("-id").limit(size + 1)
    rows, cursor = page_of(rows, size, "notification")
    return t.NotificationPage(
        items=[
            t.Notification(
                id=_id(n.id),
                event=n.event.value,
                payload=n.payload,
                status=n.status.value,
                created_at=n.created_at,
                sent_at=n.sent_at,
            )
            for n in rows
        ],
        next_cursor=cursor,
    )


def application_type(application: Any) -> t.MerchantApplication:
    return t.MerchantApplication(
        id=_id(application.id),
        status=application.status,
        store_name=application.store_name,
        applicant_id=_id(application.applicant_id),
        referrer_id=opt_id(application.referrer_id),
        reject_reason=application.reject_reason,
        store_id=opt_id(application.store_id),
        created_at=application.created_at,
    )


async def apply_merchant(ctx: Context, data: Any) -> t.MerchantApplication:
    from app.merchants import service as merchants

    user_id = ctx.require_user()
    return application_type(await merchants.apply(user_id, input_to_patch(data), now=ctx.now()))


async def my_merchant_applications(ctx: Context) -> list[t.MerchantApplication]:
    from app.merchants import service as merchants

    user_id = ctx.require_user()
    return [application_type(a) for a in await merchants.list_for_user(user_id)]


async def merchant_applications(
    ctx: Context, status: Any, first: int | None, after: str | None
) -> t.ApplicationPage:
    from app.merchants import service as merchants

    ctx.require_admin()
    size = page_size(first)
    rows = await merchants.list_all(
        status=status, before_id=decode_cursor("application", after), limit=size + 1
    )
    rows, cursor = page_of(rows, size, "application")
    return t.ApplicationPage(
        items=[application_type(a) for a in rows],
        next_cursor=cursor,
    )


async def review_merchant_application(
    ctx: Context,
    application_id: Any,
    approve: bool,
    commission_rate_bp: int | None,
    reject_reason: str | None,
) -> t.MerchantApplication:
    from app.merchants import service as merchants

    ctx.require_admin()
    reviewed = await merchants.review(
        application_id,
        approve,
        commission_rate_bp=commission_rate_bp,
        reject_reason=reject_reason,
        now=ctx.now(),
    )
    return application_type(reviewed)


def withdrawal_type(withdrawal: Any) -> t.Withdrawal:
    return t.Withdrawal(
        id=_id(withdrawal.id),
        user_id=_id(withdrawal.user_id),
        amount_fen=withdrawal.amount_fen,
        fee_fen=withdrawal.fee_fen,
        status=withdrawal.status,
        created_at=withdrawal.created_at,
    )


async def request_withdrawal(ctx: Context, amount_fen: int) -> t.Withdrawal:
    from app.wallet import withdrawals

    user_id = ctx.require_user()
    return withdrawal_type(await withdrawals.request_withdrawal(user_id, amount_fen, now=ctx.now()))


async def review_withdrawal(ctx: Context, withdrawal_id: Any, approve: bool) -> t.Withdrawal:
    from app.wallet import withdrawals

    ctx.require_admin()
    reviewed = await withdrawals.review_withdrawal(
        parse_id(withdrawal_id, "id"), approve, gateway=ctx.services.wechat, now=ctx.now()
    )
    return withdrawal_type(reviewed)


async def withdrawal_page(
    ctx: Context, *, user_id: int | None, status: Any, first: int | None, after: str | None
) -> t.WithdrawalPage:
    from app.wallet import withdrawals

    size = page_size(first)
    rows = await withdrawals.list_withdrawals(
        user_id=user_id, status=status, before_id=decode_cursor("withdrawal", after), limit=size + 1
    )
    rows, cursor = page_of(rows, size, "withdrawal")
    return t.WithdrawalPage(
        items=[withdrawal_type(w) for w in rows],
        next_cursor=cursor,
    )


def _team_level_type(level: TeamLevel) -> t.TeamLevel:
    return t.TeamLevel(
        id=_id(level.id), name=level.name, rate_bp=level.rate_bp, shareholder=level.shareholder
    )


def _distribution_type(settings: Any, levels: list[TeamLevel]) -> t.DistributionSettings:
    return t.DistributionSettings(
        direct_rate_bp=settings.direct_rate_bp,
        indirect_rate_bp=settings.indirect_rate_bp,
        dividend_rate_bp=settings.dividend_rate_bp,
        merchant_referral_rate_bp=settings.merchant_referral_rate_bp,
        commission_freeze_days=settings.commission_freeze_days,
        max_commission_depth=settings.max_commission_depth,
        withdrawal_min_fen=settings.withdrawal_min_fen,
        withdrawal_fee_bp=settings.withdrawal_fee_bp,
        team_levels=[_team_level_type(level) for level in levels],
    )


async def distribution_settings(ctx: Context) -> t.DistributionSettings:
    from app.distribution.settings import list_team_levels, load_distribution_settings

    ctx.require_admin()
    return _distribution_type(await load_distribution_settings(), await list_team_levels())


async def update_distribution_settings(ctx: Context, data: Any) -> t.DistributionSettings:
    from app.distribution.settings import list_team_levels
    from app.distribution.settings import update_distribution_settings as update

    ctx.require_admin()
    patch = input_to_patch(data)
    levels = patch.pop("team_levels", None)
    settings, _ = await update(patch, levels)
    return _distribution_type(settings, await list_team_levels())


async def my_team(ctx: Context, first: int | None, after: str | None) -> t.UserPage:
    from app.distribution.service import team_of

    user_id = ctx.require_user()
    size = page_size(first)
    rows = await team_of(user_id, before_id=decode_cursor("user", after), limit=size + 1)
    rows, cursor = page_of(rows, size, "user")
    return t.UserPage(
        items=list(await asyncio.gather(*(user_type(ctx, u) for u in rows))),
        next_cursor=cursor,
    )


async def my_commissions(
    ctx: Context, status: Any, first: int | None, after: str | None
) -> t.CommissionPage:
    from app.distribution.service import commissions_of

    user_id = ctx.require_user()
    size = page_size(first)
    rows = await commissions_of(
        user_id, status=status, before_id=decode_cursor("commission", after), limit=size + 1
    )
    rows, cursor = page_of(rows, size, "commission")
    return t.CommissionPage(
        items=[
            t.Commission(
                id=_id(c.id),
                kind=c.kind,
                status=c.status,
                amount_fen=c.amount_fen,
                from_user_id=opt_id(c.from_user_id),
                order_id=opt_id(c.order_id),
                store_id=opt_id(c.store_id),
                created_at=c.created_at,
            )
            for c in rows
        ],
        next_cursor=cursor,
    )
