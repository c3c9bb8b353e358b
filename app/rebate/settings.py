"""The plugin's settings and the per-scope rebate rules, validated on the way in (SPEC §3–§12)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from app.bulk import Params
from app.enums import DeductionMode, LotteryMode, ResetSchedule, RewardOrder, SettleOn
from app.errors import BadInput
from app.money import MAX_RATIO_BP

RatioBp = Annotated[int, Field(ge=0, le=MAX_RATIO_BP, strict=True)]
NonNegative = Annotated[int, Field(ge=0, strict=True)]
M = TypeVar("M", bound=BaseModel)
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelRatio(_Strict):
    level_id: int
    ratio_bp: RatioBp


class CumulativeTier(_Strict):
    days: Annotated[int, Field(ge=1, le=3650, strict=True)]
    min_amount_fen: NonNegative
    ratio_bp: RatioBp


class TimeWindow(_Strict):
    start: str
    end: str

    @model_validator(mode="after")
    def _hhmm(self) -> TimeWindow:
        for value in (self.start, self.end):
            if not _HHMM.match(value):
                raise ValueError(f"time {value!r} is not HH:MM")
        return self


class LotteryConfig(_Strict):
    mode: LotteryMode
    ratios_bp: list[RatioBp] | None = None
    weights: list[Annotated[int, Field(ge=0, strict=True)]] | None = None
    min_bp: RatioBp | None = None
    max_bp: RatioBp | None = None

    @model_validator(mode="after")
    def _complete(self) -> LotteryConfig:
        if self.mode == LotteryMode.FIXED:
            if not self.ratios_bp:
                raise ValueError("a FIXED lottery needs ratiosBp")
            if self.weights is not None and (
                len(self.weights) != len(self.ratios_bp) or sum(self.weights) == 0
            ):
                raise ValueError("weights must match ratiosBp one to one and not all be 0")
        else:
            if self.min_bp is None or self.max_bp is None or self.min_bp > self.max_bp:
                raise ValueError("a RANGE lottery needs minBp <= maxBp")
        return self


class RandomReturn(_Strict):
    enabled: bool = False
    cash_seats: NonNegative = 0
    points_seats: NonNegative = 0

    @model_validator(mode="after")
    def _group(self) -> RandomReturn:
        if self.enabled and self.cash_seats + self.points_seats == 0:
            raise ValueError("random return needs at least one seat per group")
        return self


class RebateRule(_Strict):
    """The rules of one scope: a product, a store's goods, a store's cashier."""

    enabled: bool = False
    extraction_ratio_bp: RatioBp | None = None
    ratio_bp: RatioBp | None = None
    member_level_ratios: list[LevelRatio] = []
    cumulative_tiers: list[CumulativeTier] = []
    lottery: LotteryConfig | None = None
    reward_windows: list[TimeWindow] = []
    limit_per_user_per_day: NonNegative | None = None
    limit_per_user_total: NonNegative | None = None
    random_return: RandomReturn | None = None


class DisplaySettings(_Strict):
    show_queue_process: bool = True
    show_accumulated_reward: bool = True
    show_pending_reward: bool = True
    show_member_info: bool = True
    show_pending_amount: bool = True


class ResetConfig(_Strict):
    enabled: bool = False
    schedule: ResetSchedule = ResetSchedule.DAILY
    time: str = "00:00"
    weekday: Annotated[int, Field(ge=1, le=7, strict=True)] | None = None
    month_day: Annotated[int, Field(ge=1, le=31, strict=True)] | None = None
    at: list[datetime] = []
    # When this schedule was set: instants before it are not owed (not part of the API).
    since: datetime | None = None

    def schedule_key(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"since"})

    @model_validator(mode="after")
    def _schedule(self) -> ResetConfig:
        if not _HHMM.match(self.time):
            raise ValueError(f"time {self.time!r} is not HH:MM")
        if self.enabled:
            if self.schedule == ResetSchedule.WEEKLY and self.weekday is None:
                raise ValueError("a WEEKLY reset needs a weekday")
            if self.schedule == ResetSchedule.MONTHLY and self.month_day is None:
                raise ValueError("a MONTHLY reset needs a monthDay")
            if self.schedule == ResetSchedule.AT_TIMES and not self.at:
                raise ValueError("an AT_TIMES reset needs at least one instant")
        return self


class RebateSettings(_Strict):
    """排队返利插件基础设置. Defaults are the article's worked example (130% / 65%)."""

    enabled: bool = True
    new_products_enabled_by_default: bool = True
    deduction_mode: DeductionMode = DeductionMode.PARTICIPATE
    settle_on: SettleOn = SettleOn.PAID
    reward_order: RewardOrder = RewardOrder.QUEUE_ORDER
    display_name: Annotated[str, Field(min_length=1, max_length=32)] = "排队返利"
    exchange_button_name: Annotated[str, Field(min_length=1, max_length=32)] = "兑换"
    extraction_ratio_bp: RatioBp = 6500
    default_reward_ratio_bp: RatioBp = 13000
    member_level_ratios: list[LevelRatio] = []
    lottery: LotteryConfig | None = None
    points_exchange_ratio_bp: RatioBp = 10000
    love_value_exchange_ratio_bp: RatioBp = 10000
    love_value_frozen: bool = False
    mall_queue: bool = True
    all_stores_queue: bool = False
    all_cashiers_queue: bool = False
    random_return: RandomReturn = RandomReturn()
    reset: ResetConfig = ResetConfig()
    paused: bool = False
    display: DisplaySettings = DisplaySettings()


_NO_NULL = {"enabled", "member_level_ratios", "cumulative_tiers", "reward_windows"}


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            head, *rest = str(part).split("_")
            name = head + "".join(word.title() for word in rest)
            parts.append(("." if parts else "") + name)
    return "".join(parts)


def validated(model: type[M], data: dict[str, Any], prefix: str = "") -> M:
    """Build `model` from `data`, turning every validation error into one clear BAD_USER_INPUT."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_path(tuple(first["loc"]))
        where = f"{prefix}.{field}" if prefix and field else (prefix or field)
        message = first["msg"].removeprefix("Value error, ")
        raise BadInput(f"{where}: {message}" if where else message, field=where or None) from None


def merge_patch(current: BaseModel, patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a partial update: omitted keys stay, explicit null clears, nested objects merge."""
    merged = current.model_dump(mode="python")
    for key, value in patch.items():
        if value is None and key in _NO_NULL:
            raise BadInput(f"{_field_path((key,))} cannot be null", field=_field_path((key,)))
        nested = getattr(current, key, None)
        if isinstance(value, dict) and isinstance(nested, BaseModel):
            merged[key] = merge_patch(nested, value)
        else:
            merged[key] = value
    return merged


# The revision of settings never saved (the defaults), as statements that read it tell it.
NEVER_SAVED = -1
_DEFAULTS = RebateSettings()

# The last settings read outside a transaction: (revision, stored text, settings). Every screen
# reads them, and validating the document costs more than reading it. The object is frozen, so
# sharing it is safe.
_last_read: tuple[int | None, str, RebateSettings] | None = None


async def load_rebate_settings(conn: BaseDBAsyncClient | None = None) -> RebateSettings:
    global _last_read
    client = conn or connections.get("default")
    p = Params(client)
    rows = await client.execute_query_dict(
        f"SELECT data, revision FROM plugin_settings WHERE key = {p('rebate')}", p.values
    )
    if not rows:
        if conn is None:
            _last_read = (NEVER_SAVED, "", _DEFAULTS)
        return _DEFAULTS
    raw = rows[0]["data"]
    text = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True)
    # Inside a transaction the row may be one that never commits: its revision is not kept.
    revision = int(rows[0]["revision"]) if conn is None else None
    last = _last_read
    if last is not None and last[1] == text:
        settings = last[2]
    else:
        settings = RebateSettings.model_validate_json(text)
    if conn is None or last is None or last[1] != text:
        _last_read = (revision, text, settings)
    return settings


def rebate_settings_at(revision: int | None) -> RebateSettings | None:
    """The settings last read, if they are at `revision` (learnt by the caller with other rows,
    from the same snapshot); None when they must be read."""
    last = _last_read
    if revision is None or last is None or last[0] != revision:
        return None
    return last[2]


def forget_rebate_settings() -> None:
    """Drop the settings last read (a test empties the database under a running process)."""
    global _last_read
    _last_read = None


async def save_rebate_settings(settings: RebateSettings, conn: BaseDBAsyncClient) -> None:
    from app.rebate.models import PluginSettings

    data = settings.model_dump(mode="json")
    updated = (
        await PluginSettings.filter(key="rebate")
        .using_db(conn)
        .update(data=data, revision=F("revision") + 1)
    )
    if not updated:
        await PluginSettings.create(key="rebate", data=data, using_db=conn)


async def update_rebate_settings(
    patch: dict[str, Any], *, now: datetime | None = None
) -> RebateSettings:
    from datetime import UTC

    from tortoise.transactions import in_transaction

    async with in_transaction() as conn:
        current = await load_rebate_settings(conn)
        if "reset" in patch and patch["reset"] is not None:
            patch = {**patch, "reset": {k: v for k, v in patch["reset"].items() if k != "since"}}
        new = validated(RebateSettings, merge_patch(current, patch))
        if new.reset.schedule_key() != current.reset.schedule_key():
            # A new schedule owes nothing for the time before it was set.
            since = now or datetime.now(UTC)
            new = new.model_copy(update={"reset": new.reset.model_copy(update={"since": since})})
        await save_rebate_settings(new, conn)
    return new


def rule_from(data: dict[str, Any] | None) -> RebateRule:
    return RebateRule.model_validate(data or {})
