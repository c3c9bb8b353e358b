"""The GraphQL schema: the contract's Query and Mutation, each field one resolver call."""

from __future__ import annotations

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)

from graphql_schema import resolvers as r
from graphql_schema import types as t
from graphql_schema.enums import (
    ApplicationStatus,
    CommissionStatus,
    EntryStatus,
    ExchangeTarget,
    WithdrawalStatus,
)
from graphql_schema.errors import ErrorCodes
from graphql_schema.inputs import (
    CashierOrderInput,
    CreateOrderInput,
    DistributionSettingsInput,
    MemberLevelInput,
    MerchantApplicationInput,
    NotificationTemplateInput,
    ProductInput,
    RebateSettingsInput,
    StoreInput,
)
from graphql_schema.ratelimit import MutationRateLimit

Info = strawberry.Info
MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000
# Distinct query texts whose parsed and validated documents are kept: a mini-program sends a few
# dozen, and the bound keeps a stream of made-up ones from growing memory.
DOCUMENT_CACHE_SIZE = 512

# The limiters' validation rules, made once: a limiter built per request makes new rule classes,
# and with them a new key for the validation cache every time.
_LIMIT_RULES = (
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
)


class QueryLimits(AddValidationRules):
    """Depth and alias limits, as validation rules (so validated once per distinct query)."""

    def __init__(self) -> None:
        super().__init__(list(_LIMIT_RULES))


@strawberry.type
class Query:
    @strawberry.field
    async def me(self, info: Info) -> t.User:
        return await r.me(info.context)

    @strawberry.field
    async def wallet(self, info: Info) -> t.Wallet:
        return await r.wallet(info.context)

    @strawberry.field
    async def rebate_display(self, info: Info) -> t.RebateDisplay:
        return await r.rebate_display(info.context)

    @strawberry.field
    async def products(
        self,
        info: Info,
        store_id: strawberry.ID | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> t.ProductPage:
        return await r.products(info.context, store_id, first, after)

    @strawberry.field
    async def order(self, info: Info, id: strawberry.ID) -> t.Order | None:
        return await r.order(info.context, id)

    @strawberry.field
    async def my_orders(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> t.OrderPage:
        return await r.my_orders(info.context, first, after)

    @strawberry.field
    async def entry(self, info: Info, id: strawberry.ID) -> t.QueueEntry | None:
        return await r.entry(info.context, id)

    @strawberry.field
    async def my_entries(
        self,
        info: Info,
        status: EntryStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> t.EntryPage:
        return await r.my_entries(info.context, status, first, after)

    @strawberry.field
    async def my_commissions(
        self,
        info: Info,
        status: CommissionStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> t.CommissionPage:
        return await r.my_commissions(info.context, status, first, after)

    @strawberry.field
    async def my_team(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> t.UserPage:
        return await r.my_team(info.context, first, after)

    @strawberry.field
    async def my_merchant_applications(self, info: Info) -> list[t.MerchantApplication]:
        return await r.my_merchant_applications(info.context)

    @strawberry.field
    async def my_stores(self, info: Info) -> list[t.Store]:
        return await r.my_stores(info.context)

    @strawberry.field
    async def my_withdrawals(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> t.WithdrawalPage:
        user_id = info.context.require_user()
        return await r.withdrawal_page(
            info.context, user_id=user_id, status=None, first=first, after=after
        )

    @strawberry.field
    async def rebate_settings(self, info: Info) -> t.RebateSettings:
        return await r.rebate_settings(info.context)

    @strawberry.field
    async def distribution_settings(self, info: Info) -> t.DistributionSettings:
        return await r.distribution_settings(info.context)

    @strawberry.field
    async def member_levels(self, info: Info) -> list[t.MemberLevel]:
        return await r.member_levels(info.context)

    @strawberry.field
    async def queue_stats(self, info: Info, queue_key: str | None = None) -> list[t.QueueStats]:
        return await r.queue_stats(info.context, queue_key)

    @strawberry.field
    async def merchant_applications(
        self,
        info: Info,
        status: ApplicationStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> t.ApplicationPage:
        return await r.merchant_applications(info.context, status, first, after)

    @strawberry.field
    async def withdrawals(
        self,
        info: Info,
        status: WithdrawalStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> t.WithdrawalPage:
        info.context.require_admin()
        return await r.withdrawal_page(
            info.context, user_id=None, status=status, first=first, after=after
        )

    @strawberry.field(description="[admin] The subscribe-message template of each event.")
    async def notification_templates(self, info: Info) -> list[t.NotificationTemplate]:
        return await r.notification_templates(info.context)

    @strawberry.field(description="The notifications the consumer was sent (SPEC §13).")
    async def my_notifications(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> t.NotificationPage:
        return await r.my_notifications(info.context, first, after)

    @strawberry.field
    async def audit(self, info: Info) -> t.AuditReport:
        return await r.audit(info.context)


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def login(
        self,
        info: Info,
        code: str,
        referrer_code: str | None = None,
        nickname: str | None = None,
        avatar_url: str | None = None,
    ) -> t.AuthPayload:
        return await r.login(info.context, code, referrer_code, nickname, avatar_url)

    @strawberry.mutation
    async def create_order(self, info: Info, input: CreateOrderInput) -> t.Order:
        return await r.create_order(info.context, input)

    @strawberry.mutation
    async def create_cashier_order(self, info: Info, input: CashierOrderInput) -> t.Order:
        return await r.create_cashier_order(info.context, input)

    @strawberry.mutation
    async def confirm_receipt(self, info: Info, order_id: strawberry.ID) -> t.Order:
        return await r.confirm_receipt(info.context, order_id)

    @strawberry.mutation
    async def draw_lottery(self, info: Info, entry_id: strawberry.ID) -> t.QueueEntry:
        return await r.draw_lottery(info.context, entry_id)

    @strawberry.mutation
    async def exchange_entry(
        self, info: Info, entry_id: strawberry.ID, target: ExchangeTarget
    ) -> t.QueueEntry:
        return await r.exchange_entry(info.context, entry_id, target)

    @strawberry.mutation
    async def request_withdrawal(self, info: Info, amount_fen: int) -> t.Withdrawal:
        return await r.request_withdrawal(info.context, amount_fen)

    @strawberry.mutation
    async def transfer_points(self, info: Info, to_user_id: strawberry.ID, points: int) -> t.Wallet:
        return await r.transfer_points(info.context, to_user_id, points)

    @strawberry.mutation
    async def apply_merchant(
        self, info: Info, input: MerchantApplicationInput
    ) -> t.MerchantApplication:
        return await r.apply_merchant(info.context, input)

    @strawberry.mutation
    async def referral_qr_code(self, info: Info) -> t.QrCode:
        return await r.referral_qr_code(info.context)

    @strawberry.mutation
    async def merchant_invite_qr_code(self, info: Info) -> t.QrCode:
        return await r.merchant_invite_qr_code(info.context)

    @strawberry.mutation(description="The store's cashier code: scanning it opens 收银台买单.")
    async def cashier_qr_code(self, info: Info, store_id: strawberry.ID) -> t.QrCode:
        return await r.cashier_qr_code(info.context, store_id)

    @strawberry.mutation
    async def update_rebate_settings(
        self, info: Info, input: RebateSettingsInput
    ) -> t.RebateSettings:
        return await r.update_rebate_settings_mutation(info.context, input)

    @strawberry.mutation(description="[admin] Replace the templates; unlisted events send nothing.")
    async def update_notification_templates(
        self, info: Info, templates: list[NotificationTemplateInput]
    ) -> list[t.NotificationTemplate]:
        return await r.update_notification_templates(info.context, templates)

    @strawberry.mutation
    async def update_distribution_settings(
        self, info: Info, input: DistributionSettingsInput
    ) -> t.DistributionSettings:
        return await r.update_distribution_settings(info.context, input)

    @strawberry.mutation
    async def upsert_member_level(self, info: Info, input: MemberLevelInput) -> t.MemberLevel:
        return await r.upsert_member_level(info.context, input)

    @strawberry.mutation
    async def set_user_levels(
        self,
        info: Info,
        user_id: strawberry.ID,
        # UNSET: an omitted level stays as it is; an explicit null clears it.
        member_level_id: strawberry.ID | None = strawberry.UNSET,
        team_level_id: strawberry.ID | None = strawberry.UNSET,
    ) -> t.User:
        changes = {
            key: value
            for key, value in (
                ("member_level_id", member_level_id),
                ("team_level_id", team_level_id),
            )
            if value is not strawberry.UNSET
        }
        return await r.set_user_levels(info.context, user_id, changes)

    @strawberry.mutation
    async def upsert_product(self, info: Info, input: ProductInput) -> t.Product:
        return await r.upsert_product(info.context, input)

    @strawberry.mutation
    async def enable_rebate_for_all_products(self, info: Info) -> int:
        return await r.enable_rebate_for_all_products(info.context)

    @strawberry.mutation
    async def upsert_store(self, info: Info, input: StoreInput) -> t.Store:
        return await r.upsert_store(info.context, input)

    @strawberry.mutation
    async def review_merchant_application(
        self,
        info: Info,
        id: strawberry.ID,
        approve: bool,
        commission_rate_bp: int | None = None,
        reject_reason: str | None = None,
    ) -> t.MerchantApplication:
        return await r.review_merchant_application(
            info.context, id, approve, commission_rate_bp, reject_reason
        )

    @strawberry.mutation
    async def complete_order(self, info: Info, order_id: strawberry.ID) -> t.Order:
        return await r.complete_order_as(info.context, order_id)

    @strawberry.mutation
    async def refund_order(
        self, info: Info, order_id: strawberry.ID, reason: str | None = None
    ) -> t.Order:
        return await r.refund_order(info.context, order_id, reason)

    @strawberry.mutation
    async def reset_queues_now(self, info: Info) -> int:
        return await r.reset_queues_now(info.context)

    @strawberry.mutation
    async def review_withdrawal(self, info: Info, id: strawberry.ID, approve: bool) -> t.Withdrawal:
        return await r.review_withdrawal(info.context, id, approve)


def build_schema(*, introspection: bool = True) -> strawberry.Schema:
    """The schema; production builds it without introspection (the contract is published)."""
    extensions: list = [
        QueryLimits,
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        # Parsing and validating a query cost more than answering a small one; both depend only
        # on the query's text (and the fixed schema and rules), so each text is done once.
        lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
        MutationRateLimit,
        ErrorCodes,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(query=Query, mutation=Mutation, extensions=extensions)


schema = build_schema()
