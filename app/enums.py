"""The domain's closed vocabularies; the API exposes them under the same names."""

from __future__ import annotations

from enum import StrEnum


class EntryStatus(StrEnum):
    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    EXCHANGED = "EXCHANGED"
    CONVERTED = "CONVERTED"
    CLEARED = "CLEARED"
    CANCELLED = "CANCELLED"


class RatioSource(StrEnum):
    MEMBER_LEVEL = "MEMBER_LEVEL"
    CUMULATIVE = "CUMULATIVE"
    LOTTERY_DEFAULT = "LOTTERY_DEFAULT"
    LOTTERY_DRAWN = "LOTTERY_DRAWN"
    INDEPENDENT = "INDEPENDENT"
    DEFAULT = "DEFAULT"


class SettleOn(StrEnum):
    PAID = "PAID"
    COMPLETED = "COMPLETED"


class RewardOrder(StrEnum):
    QUEUE_ORDER = "QUEUE_ORDER"
    COMPLETED_FIRST = "COMPLETED_FIRST"


class DeductionMode(StrEnum):
    PARTICIPATE = "PARTICIPATE"
    NOT_PARTICIPATE = "NOT_PARTICIPATE"


class LotteryMode(StrEnum):
    FIXED = "FIXED"
    RANGE = "RANGE"


class ExchangeTarget(StrEnum):
    POINTS = "POINTS"
    LOVE_VALUE = "LOVE_VALUE"


class ResetSchedule(StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    AT_TIMES = "AT_TIMES"


class ProductSource(StrEnum):
    SELF_OPERATED = "SELF_OPERATED"
    SUPPLIER = "SUPPLIER"
    SUPPLY_CHAIN = "SUPPLY_CHAIN"
    STORE = "STORE"


class OrderKind(StrEnum):
    MALL = "MALL"
    STORE_GOODS = "STORE_GOODS"
    CASHIER = "CASHIER"


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    COMPLETED = "COMPLETED"
    REFUNDED = "REFUNDED"
    CLOSED = "CLOSED"


class ApplicationStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class CommissionKind(StrEnum):
    DIRECT = "DIRECT"
    INDIRECT = "INDIRECT"
    LEVEL_DIFFERENCE = "LEVEL_DIFFERENCE"
    SHAREHOLDER_DIVIDEND = "SHAREHOLDER_DIVIDEND"
    MERCHANT_REFERRAL = "MERCHANT_REFERRAL"


class CommissionStatus(StrEnum):
    PENDING = "PENDING"
    AVAILABLE = "AVAILABLE"
    CANCELLED = "CANCELLED"


class WithdrawalStatus(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    REJECTED = "REJECTED"
