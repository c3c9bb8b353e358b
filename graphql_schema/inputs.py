"""The contract's input types; omitted optional fields stay UNSET, unlike an explicit null."""

import datetime

import strawberry

from graphql_schema.enums import (
    DeductionMode,
    LotteryMode,
    ProductSource,
    ResetSchedule,
    RewardOrder,
    SettleOn,
)

# Every optional field defaults to strawberry.UNSET, never None: in the contract an omitted field
# leaves a setting as it is while an explicit null clears it, and updates must tell the two apart.


@strawberry.input
class LevelRatioInput:
    level_id: strawberry.ID
    ratio_bp: int


@strawberry.input
class CumulativeTierInput:
    days: int
    min_amount_fen: int
    ratio_bp: int


@strawberry.input
class TimeWindowInput:
    start: str
    end: str


@strawberry.input
class LotteryConfigInput:
    mode: LotteryMode
    ratios_bp: list[int] | None = strawberry.UNSET
    weights: list[int] | None = strawberry.UNSET
    min_bp: int | None = strawberry.UNSET
    max_bp: int | None = strawberry.UNSET


@strawberry.input
class RandomReturnInput:
    enabled: bool
    cash_seats: int
    points_seats: int


@strawberry.input
class DisplaySettingsInput:
    show_queue_process: bool | None = strawberry.UNSET
    show_accumulated_reward: bool | None = strawberry.UNSET
    show_pending_reward: bool | None = strawberry.UNSET
    show_member_info: bool | None = strawberry.UNSET
    show_pending_amount: bool | None = strawberry.UNSET


@strawberry.input
class ResetConfigInput:
    enabled: bool
    schedule: ResetSchedule
    time: str | None = strawberry.UNSET
    weekday: int | None = strawberry.UNSET
    month_day: int | None = strawberry.UNSET
    at: list[datetime.datetime] | None = strawberry.UNSET


@strawberry.input
class RebateRuleInput:
    enabled: bool | None = strawberry.UNSET
    extraction_ratio_bp: int | None = strawberry.UNSET
    ratio_bp: int | None = strawberry.UNSET
    member_level_ratios: list[LevelRatioInput] | None = strawberry.UNSET
    cumulative_tiers: list[CumulativeTierInput] | None = strawberry.UNSET
    lottery: LotteryConfigInput | None = strawberry.UNSET
    reward_windows: list[TimeWindowInput] | None = strawberry.UNSET
    limit_per_user_per_day: int | None = strawberry.UNSET
    limit_per_user_total: int | None = strawberry.UNSET
    random_return: RandomReturnInput | None = strawberry.UNSET


@strawberry.input
class RebateSettingsInput:
    enabled: bool | None = strawberry.UNSET
    new_products_enabled_by_default: bool | None = strawberry.UNSET
    deduction_mode: DeductionMode | None = strawberry.UNSET
    settle_on: SettleOn | None = strawberry.UNSET
    reward_order: RewardOrder | None = strawberry.UNSET
    display_name: str | None = strawberry.UNSET
    exchange_button_name: str | None = strawberry.UNSET
    extraction_ratio_bp: int | None = strawberry.UNSET
    default_reward_ratio_bp: int | None = strawberry.UNSET
    member_level_ratios: list[LevelRatioInput] | None = strawberry.UNSET
    lottery: LotteryConfigInput | None = strawberry.UNSET
    points_exchange_ratio_bp: int | None = strawberry.UNSET
    love_value_exchange_ratio_bp: int | None = strawberry.UNSET
    love_value_frozen: bool | None = strawberry.UNSET
    mall_queue: bool | None = strawberry.UNSET
    all_stores_queue: bool | None = strawberry.UNSET
    all_cashiers_queue: bool | None = strawberry.UNSET
    random_return: RandomReturnInput | None = strawberry.UNSET
    reset: ResetConfigInput | None = strawberry.UNSET
    paused: bool | None = strawberry.UNSET
    display: DisplaySettingsInput | None = strawberry.UNSET


@strawberry.input
class TeamLevelInput:
    # Absent: a new level.
    id: strawberry.ID | None = strawberry.UNSET
    name: str
    rate_bp: int
    shareholder: bool


@strawberry.input
class DistributionSettingsInput:
    direct_rate_bp: int | None = strawberry.UNSET
    indirect_rate_bp: int | None = strawberry.UNSET
    dividend_rate_bp: int | None = strawberry.UNSET
    merchant_referral_rate_bp: int | None = strawberry.UNSET
    commission_freeze_days: int | None = strawberry.UNSET
    max_commission_depth: int | None = strawberry.UNSET
    withdrawal_min_fen: int | None = strawberry.UNSET
    withdrawal_fee_bp: int | None = strawberry.UNSET
    team_levels: list[TeamLevelInput] | None = strawberry.UNSET


@strawberry.input
class MemberLevelInput:
    # Absent: a new level.
    id: strawberry.ID | None = strawberry.UNSET
    name: str
    rank: int


@strawberry.input
class ProductInput:
    # Absent: a new product.
    id: strawberry.ID | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    price_fen: int | None = strawberry.UNSET
    cost_fen: int | None = strawberry.UNSET
    supply_price_fen: int | None = strawberry.UNSET
    source: ProductSource | None = strawberry.UNSET
    store_id: strawberry.ID | None = strawberry.UNSET
    listed: bool | None = strawberry.UNSET
    rebate: RebateRuleInput | None = strawberry.UNSET


@strawberry.input
class StoreInput:
    # Absent: a new store.
    id: strawberry.ID | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    owner_id: strawberry.ID | None = strawberry.UNSET
    commission_rate_bp: int | None = strawberry.UNSET
    goods_rebate: RebateRuleInput | None = strawberry.UNSET
    cashier_rebate: RebateRuleInput | None = strawberry.UNSET


@strawberry.input
class OrderLineInput:
    product_id: strawberry.ID
    quantity: int


@strawberry.input
class CreateOrderInput:
    lines: list[OrderLineInput]
    points_to_use: int | None = strawberry.UNSET
    love_value_to_use: int | None = strawberry.UNSET


@strawberry.input
class CashierOrderInput:
    store_id: strawberry.ID
    amount_fen: int


@strawberry.input
class MerchantApplicationInput:
    store_name: str
    contact_name: str
    phone: str
    address: str
    license_no: str
    referrer_code: str | None = strawberry.UNSET


@strawberry.input
class TemplateFieldInput:
    key: str
    source: str


@strawberry.input
class NotificationTemplateInput:
    event: str
    template_id: str
    page: str | None = None
    fields: list[TemplateFieldInput] = strawberry.field(default_factory=list)
