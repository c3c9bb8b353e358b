"""Between the API's shapes and the domain's: inputs to patches, settings to types, cursors."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

import strawberry

from app.errors import BadInput
from app.rebate import settings as domain
from graphql_schema import types as t

MAX_PAGE = 100
Row = TypeVar("Row")


def input_to_patch(value: Any) -> Any:
    """A strawberry input as a plain dict of the fields the client sent (UNSET ones left out)."""
    if value is strawberry.UNSET:
        raise ValueError("UNSET has no value")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        patch = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if item is strawberry.UNSET:
                continue
            patch[field.name] = input_to_patch(item)
        return patch
    if isinstance(value, list):
        return [input_to_patch(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value


def page_size(first: int | None) -> int:
    size = 20 if first is None else first
    if not 1 <= size <= MAX_PAGE:
        raise BadInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    return size


def page_of(
    rows: list[Row], size: int, kind: str, key: Callable[[Row], int] = lambda row: row.id
) -> tuple[list[Row], str | None]:
    """One page of `size` from `size + 1` rows read, and the cursor of the next page if any."""
    if len(rows) > size:
        rows = rows[:size]
        return rows, encode_cursor(kind, key(rows[-1]))
    return rows, None


def encode_cursor(kind: str, key: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        found_kind, key = base64.urlsafe_b64decode(padded.encode()).decode().split(":", 1)
        if found_kind != kind:
            raise ValueError(kind)
        return int(key)
    except (ValueError, UnicodeDecodeError):
        raise BadInput("after is not a cursor of this list", field="after") from None


def lottery_type(config: domain.LotteryConfig | None) -> t.LotteryConfig | None:
    if config is None:
        return None
    return t.LotteryConfig(
        mode=config.mode,
        ratios_bp=config.ratios_bp,
        weights=config.weights,
        min_bp=config.min_bp,
        max_bp=config.max_bp,
    )


def random_return_type(config: domain.RandomReturn) -> t.RandomReturn:
    return t.RandomReturn(
        enabled=config.enabled, cash_seats=config.cash_seats, points_seats=config.points_seats
    )


def level_ratios_type(ratios: list[domain.LevelRatio]) -> list[t.LevelRatio]:
    return [
        t.LevelRatio(level_id=strawberry.ID(str(r.level_id)), ratio_bp=r.ratio_bp) for r in ratios
    ]


def rule_type(rule: domain.RebateRule) -> t.RebateRule:
    return t.RebateRule(
        enabled=rule.enabled,
        extraction_ratio_bp=rule.extraction_ratio_bp,
        ratio_bp=rule.ratio_bp,
        member_level_ratios=level_ratios_type(rule.member_level_ratios),
        cumulative_tiers=[
            t.CumulativeTier(days=c.days, min_amount_fen=c.min_amount_fen, ratio_bp=c.ratio_bp)
            for c in rule.cumulative_tiers
        ],
        lottery=lottery_type(rule.lottery),
        reward_windows=[t.TimeWindow(start=w.start, end=w.end) for w in rule.reward_windows],
        limit_per_user_per_day=rule.limit_per_user_per_day,
        limit_per_user_total=rule.limit_per_user_total,
        random_return=random_return_type(rule.random_return) if rule.random_return else None,
    )


def display_type(display: domain.DisplaySettings) -> t.DisplaySettings:
    return t.DisplaySettings(**display.model_dump())


def settings_type(s: domain.RebateSettings) -> t.RebateSettings:
    return t.RebateSettings(
        enabled=s.enabled,
        new_products_enabled_by_default=s.new_products_enabled_by_default,
        deduction_mode=s.deduction_mode,
        settle_on=s.settle_on,
        reward_order=s.reward_order,
        display_name=s.display_name,
        exchange_button_name=s.exchange_button_name,
        extraction_ratio_bp=s.extraction_ratio_bp,
        default_reward_ratio_bp=s.default_reward_ratio_bp,
        member_level_ratios=level_ratios_type(s.member_level_ratios),
        lottery=lottery_type(s.lottery),
        points_exchange_ratio_bp=s.points_exchange_ratio_bp,
        love_value_exchange_ratio_bp=s.love_value_exchange_ratio_bp,
        love_value_frozen=s.love_value_frozen,
        mall_queue=s.mall_queue,
        all_stores_queue=s.all_stores_queue,
        all_cashiers_queue=s.all_cashiers_queue,
        random_return=random_return_type(s.random_return),
        reset=t.ResetConfig(
            enabled=s.reset.enabled,
            schedule=s.reset.schedule,
            time=s.reset.time,
            weekday=s.reset.weekday,
            month_day=s.reset.month_day,
            at=list(s.reset.at),
        ),
        paused=s.paused,
        display=display_type(s.display),
    )


def opt_id(value: int | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))
