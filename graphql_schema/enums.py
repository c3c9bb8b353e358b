"""The contract's enums, registered with strawberry from the domain's StrEnums to share values."""

import strawberry

from app import enums as domain

# strawberry.enum registers the domain classes themselves rather than copies, so resolvers can hand
# domain values straight to the API and inputs arrive as domain members.
EntryStatus = strawberry.enum(domain.EntryStatus, name="EntryStatus")
RatioSource = strawberry.enum(domain.RatioSource, name="RatioSource")
SettleOn = strawberry.enum(domain.SettleOn, name="SettleOn")
RewardOrder = strawberry.enum(domain.RewardOrder, name="RewardOrder")
DeductionMode = strawberry.enum(domain.DeductionMode, name="DeductionMode")
LotteryMode = strawberry.enum(domain.LotteryMode, name="LotteryMode")
ExchangeTarget = strawberry.enum(domain.ExchangeTarget, name="ExchangeTarget")
ResetSchedule = strawberry.enum(domain.ResetSchedule, name="ResetSchedule")
ProductSource = strawberry.enum(domain.ProductSource, name="ProductSource")
OrderKind = strawberry.enum(domain.OrderKind, name="OrderKind")
OrderStatus = strawberry.enum(domain.OrderStatus, name="OrderStatus")
ApplicationStatus = strawberry.enum(domain.ApplicationStatus, name="ApplicationStatus")
CommissionKind = strawberry.enum(domain.CommissionKind, name="CommissionKind")
CommissionStatus = strawberry.enum(domain.CommissionStatus, name="CommissionStatus")
WithdrawalStatus = strawberry.enum(domain.WithdrawalStatus, name="WithdrawalStatus")

__all__ = [
    "ApplicationStatus",
    "CommissionKind",
    "CommissionStatus",
    "DeductionMode",
    "EntryStatus",
    "ExchangeTarget",
    "LotteryMode",
    "OrderKind",
    "OrderStatus",
    "ProductSource",
    "RatioSource",
    "ResetSchedule",
    "RewardOrder",
    "SettleOn",
    "WithdrawalStatus",
]
