"""The contract's object types (all but Query and Mutation), built by resolvers from domain data."""

import datetime

import strawberry

from graphql_schema.enums import (
    ApplicationStatus,
    CommissionKind,
    CommissionStatus,
    DeductionMode,
    EntryStatus,
    LotteryMode,
    OrderKind,
    OrderStatus,
    ProductSource,
    RatioSource,
    ResetSchedule,
    RewardOrder,
    SettleOn,
    WithdrawalStatus,
)

# The contract's page size when `first` is omitted or null.
DEFAULT_PAGE_SIZE = 20


@strawberry.type
class MemberLevel:
    id: strawberry.ID
    name: str
    rank: int


@strawberry.type
class TeamLevel:
    id: strawberry.ID
    name: str
    rate_bp: int
    shareholder: bool


@strawberry.type
class User:
    id: strawberry.ID
    nickname: str | None
    avatar_url: str | None
    referrer_code: str
    referrer_id: strawberry.ID | None
    member_level: MemberLevel | None
    team_level: TeamLevel | None


@strawberry.type
class AuthPayload:
    token: str
    user: User


@strawberry.type
class LevelRatio:
    level_id: strawberry.ID
    ratio_bp: int


@strawberry.type
class CumulativeTier:
    days: int
    min_amount_fen: int
    ratio_bp: int


@strawberry.type
class TimeWindow:
    start: str
    end: str


@strawberry.type
class LotteryConfig:
    mode: LotteryMode
    ratios_bp: list[int] | None
    weights: list[int] | None
    min_bp: int | None
    max_bp: int | None


@strawberry.type
class RandomReturn:
    enabled: bool
    cash_seats: int
    points_seats: int


@strawberry.type
class RebateRule:
    enabled: bool
    extraction_ratio_bp: int | None
    ratio_bp: int | None
    member_level_ratios: list[LevelRatio]
    cumulative_tiers: list[CumulativeTier]
    lottery: LotteryConfig | None
    reward_windows: list[TimeWindow]
    limit_per_user_per_day: int | None
    limit_per_user_total: int | None
    random_return: RandomReturn | None


@strawberry.type
class DisplaySettings:
    show_queue_process: bool
    show_accumulated_reward: bool
    show_pending_reward: bool
    show_member_info: bool
    show_pending_amount: bool


@strawberry.type
class ResetConfig:
    enabled: bool
    schedule: ResetSchedule
    time: str
    weekday: int | None
    month_day: int | None
    at: list[datetime.datetime]


@strawberry.type
class RebateSettings:
    enabled: bool
    new_products_enabled_by_default: bool
    deduction_mode: DeductionMode
    settle_on: SettleOn
    reward_order: RewardOrder
    display_name: str
    exchange_button_name: str
    extraction_ratio_bp: int
    default_reward_ratio_bp: int
    member_level_ratios: list[LevelRatio]
    lottery: LotteryConfig | None
    points_exchange_ratio_bp: int
    love_value_exchange_ratio_bp: int
    love_value_frozen: bool
    mall_queue: bool
    all_stores_queue: bool
    all_cashiers_queue: bool
    random_return: RandomReturn
    reset: ResetConfig
    paused: bool
    display: DisplaySettings


@strawberry.type
class RebateDisplay:
    display_name: str
    exchange_button_name: str
    display: DisplaySettings


@strawberry.type
class DistributionSettings:
    direct_rate_bp: int
    indirect_rate_bp: int
    dividend_rate_bp: int
    merchant_referral_rate_bp: int
    commission_freeze_days: int
    max_commission_depth: int
    withdrawal_min_fen: int
    withdrawal_fee_bp: int
    team_levels: list[TeamLevel]


@strawberry.type
class Product:
    id: strawberry.ID
    name: str
    price_fen: int
    cost_fen: int | None
    supply_price_fen: int | None
    source: ProductSource
    store_id: strawberry.ID | None
    listed: bool
    rebate: RebateRule


@strawberry.type
class StoreTurnover:
    order_count: int
    paid_fen: int


@strawberry.type
class Store:
    id: strawberry.ID
    name: str
    owner_id: strawberry.ID | None
    referrer_id: strawberry.ID | None
    commission_rate_bp: int
    goods_rebate: RebateRule
    cashier_rebate: RebateRule
    cashier_qr_scene: str
    store_pk: strawberry.Private[int]
    owner_pk: strawberry.Private[int | None]

    @strawberry.field(description="Paid and completed orders and their cash: owner and operator.")
    async def turnover(self, info: strawberry.Info) -> StoreTurnover | None:
        return await info.context.store_turnover(self)

    @strawberry.field(description="The store's orders, newest first: owner and operator.")
    async def orders(
        self, info: strawberry.Info, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> "OrderPage | None":  # defined below
        return await info.context.store_orders(self, first, after)


# Field names follow WeChat Pay's JSAPI parameters, which the mini-program passes on unchanged.
@strawberry.type
class PayParams:
    app_id: str
    time_stamp: str
    nonce_str: str
    package: str
    sign_type: str
    pay_sign: str


@strawberry.type
class OrderLine:
    id: strawberry.ID
    product_id: strawberry.ID | None
    quantity: int
    amount_fen: int
    paid_fen: int
    queue_key: str | None


@strawberry.type
class Order:
    id: strawberry.ID
    out_trade_no: str
    kind: OrderKind
    status: OrderStatus
    user_id: strawberry.ID
    store_id: strawberry.ID | None
    total_fen: int
    deduction_fen: int
    payable_fen: int
    lines: list[OrderLine]
    settled: bool
    pay_params: PayParams | None
    created_at: datetime.datetime
    paid_at: datetime.datetime | None
    completed_at: datetime.datetime | None


@strawberry.type
class Payout:
    from_order_id: strawberry.ID
    amount_fen: int
    at: datetime.datetime
    payer_nickname: str | None
    payer_avatar_url: str | None


@strawberry.type
class PayoutPage:
    items: list[Payout]
    next_cursor: str | None


@strawberry.type
class QueueEntry:
    id: strawberry.ID
    queue_key: str
    order_id: strawberry.ID
    order_line_id: strawberry.ID
    status: EntryStatus
    paid_fen: int
    ratio_bp: int
    ratio_source: RatioSource
    entitlement_fen: int
    rewarded_fen: int | None
    remaining_fen: int | None
    progress_bp: int
    number: int | None
    position: int | None
    amount_ahead_fen: int | None
    estimated_wait_days: float | None
    lottery_available: bool
    created_at: datetime.datetime
    ended_at: datetime.datetime | None
    # Kept out of the API: what `process` needs to page the entry's payouts without reloading it,
    # and the display setting as decided where the entry was built (hidden → null).
    entry_pk: strawberry.Private[int]
    show_process: strawberry.Private[bool]

    @strawberry.field
    async def process(
        self,
        info: strawberry.Info,
        # Nullable as in the contract (`first: Int = 20`); an explicit null means the default.
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> PayoutPage | None:
        if not self.show_process:
            return None
        size = DEFAULT_PAGE_SIZE if first is None else first
        return await info.context.entry_process(self, size, after)


@strawberry.type
class EntryPage:
    items: list[QueueEntry]
    next_cursor: str | None


@strawberry.type
class Wallet:
    balance_fen: int
    pending_commission_fen: int
    points: int
    love_value: int
    love_value_frozen: int


@strawberry.type
class Commission:
    id: strawberry.ID
    kind: CommissionKind
    status: CommissionStatus
    amount_fen: int
    from_user_id: strawberry.ID | None
    order_id: strawberry.ID | None
    store_id: strawberry.ID | None
    created_at: datetime.datetime


@strawberry.type
class CommissionPage:
    items: list[Commission]
    next_cursor: str | None


@strawberry.type
class UserPage:
    items: list[User]
    next_cursor: str | None


@strawberry.type
class OrderPage:
    items: list[Order]
    next_cursor: str | None


@strawberry.type
class ProductPage:
    items: list[Product]
    next_cursor: str | None


@strawberry.type
class MerchantApplication:
    id: strawberry.ID
    status: ApplicationStatus
    store_name: str
    applicant_id: strawberry.ID
    referrer_id: strawberry.ID | None
    reject_reason: str | None
    store_id: strawberry.ID | None
    created_at: datetime.datetime


@strawberry.type
class ApplicationPage:
    items: list[MerchantApplication]
    next_cursor: str | None


@strawberry.type
class QrCode:
    scene: str
    page: str
    image_base64: str


@strawberry.type
class Withdrawal:
    id: strawberry.ID
    user_id: strawberry.ID
    amount_fen: int
    fee_fen: int
    status: WithdrawalStatus
    created_at: datetime.datetime


@strawberry.type
class WithdrawalPage:
    items: list[Withdrawal]
    next_cursor: str | None


@strawberry.type
class QueueStats:
    queue_key: str
    waiting_entries: int
    liability_fen: int
    returned_fen: int
    inflow_per_day_fen: int
    payout_per_day_fen: int
    repaid_fraction_bp: int | None
    estimated_wait_days_for_new_entry: float | None


@strawberry.type
class AuditReport:
    ok: bool
    violations: list[str]


# --- beyond the contract: the operator's notification templates and a user's notifications ----


@strawberry.type
class TemplateField:
    key: str  # WeChat's data key, e.g. "amount1"
    source: str  # the notification's variable, e.g. "amountYuan"


@strawberry.type
class NotificationTemplate:
    event: str
    template_id: str
    page: str | None
    fields: list[TemplateField]


@strawberry.type
class Notification:
    id: strawberry.ID
    event: str
    payload: strawberry.scalars.JSON
    status: str
    created_at: datetime.datetime
    sent_at: datetime.datetime | None


@strawberry.type
class NotificationPage:
    items: list[Notification]
    next_cursor: str | None
