"""Pure resolution of a line's queue, extraction ratio, reward ratio and windows (SPEC §3–§6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time

from app.enums import OrderKind, RatioSource
from app.rebate.settings import LotteryConfig, RebateRule, RebateSettings, TimeWindow


def queue_key_for(
    kind: OrderKind, *, product_id: int | None, store_id: int | None, settings: RebateSettings
) -> str:
    """The queue a line belongs to (SPEC §3)."""
    if kind == OrderKind.MALL:
        return "mall" if settings.mall_queue else f"product:{product_id}"
    if kind == OrderKind.STORE_GOODS:
        return "stores" if settings.all_stores_queue else f"store:{store_id}"
    return "cashiers" if settings.all_cashiers_queue else f"cashier:{store_id}"


def resolve_extraction(scopes: Sequence[RebateRule], plugin: RebateSettings) -> int:
    """The most specific scope that sets an extraction ratio wins, then the plugin (SPEC §4)."""
    for rule in scopes:
        if rule.extraction_ratio_bp is not None:
            return rule.extraction_ratio_bp
    return plugin.extraction_ratio_bp


@dataclass(frozen=True, slots=True)
class RatioChoice:
    ratio_bp: int
    source: RatioSource
    lottery: LotteryConfig | None = None  # set when the entry may draw (SPEC §8)


def _fixed(scopes: Sequence[RebateRule], plugin: RebateSettings) -> tuple[int, RatioSource]:
    for rule in scopes:
        if rule.ratio_bp is not None:
            return rule.ratio_bp, RatioSource.INDEPENDENT
    return plugin.default_reward_ratio_bp, RatioSource.DEFAULT


def resolve_reward_ratio(
    scopes: Sequence[RebateRule],
    plugin: RebateSettings,
    *,
    member_level_id: int | None,
    cumulative_sums: Mapping[tuple[int, int], int] | None = None,
) -> RatioChoice:
    """Walk the chain of SPEC §5: member level, cumulative, lottery, fixed ratio.

    `scopes` run from the most specific to the least (product; store product then store goods;
    cashier); the plugin closes each kind except cumulative. `cumulative_sums[(i, days)]` is the
    buyer's completed spend over `days` days as scope `i` counts it, computed by the caller.
    """
    if member_level_id is not None:
        for level_ratios in [
            *(rule.member_level_ratios for rule in scopes),
            plugin.member_level_ratios,
        ]:
            for level_ratio in level_ratios:
                if level_ratio.level_id == member_level_id:
                    return RatioChoice(level_ratio.ratio_bp, RatioSource.MEMBER_LEVEL)
    sums = cumulative_sums or {}
    for index, rule in enumerate(scopes):
        reached = [
            tier.ratio_bp
            for tier in rule.cumulative_tiers
            if sums.get((index, tier.days), 0) >= tier.min_amount_fen
        ]
        if reached:
            return RatioChoice(max(reached), RatioSource.CUMULATIVE)
    for lottery in [*(rule.lottery for rule in scopes), plugin.lottery]:
        if lottery is not None:
            ratio_bp, _ = _fixed(scopes, plugin)
            return RatioChoice(ratio_bp, RatioSource.LOTTERY_DEFAULT, lottery)
    ratio_bp, source = _fixed(scopes, plugin)
    return RatioChoice(ratio_bp, source)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def in_reward_windows(windows: Sequence[TimeWindow], local_time: time) -> bool:
    """No windows: always. Otherwise inside one of them; a window may cross midnight (SPEC §6)."""
    if not windows:
        return True
    now = local_time.hour * 60 + local_time.minute
    for window in windows:
        start, end = _minutes(window.start), _minutes(window.end)
        if start <= end:
            if start <= now < end:
                return True
        elif now >= start or now < end:
            return True
    return False
