"""分销设置 (SPEC §14, §16): rates, freeze days, depth cap, withdrawal rules, team levels."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.errors import BadInput, NotFound
from app.members.models import TeamLevel
from app.money import BP_SCALE
from app.rebate.settings import merge_patch, validated

SETTINGS_KEY = "distribution"
# Commissions on three or more tiers of a downline count as pyramid selling (SPEC §14).
HARD_MAX_DEPTH = 3

RateBp = Annotated[int, Field(ge=0, le=BP_SCALE, strict=True)]


class DistributionSettings(BaseModel):
    """The "distribution" document of PluginSettings. Withdrawal keys are shared with the wallet."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    direct_rate_bp: RateBp = 0
    indirect_rate_bp: RateBp = 0
    dividend_rate_bp: RateBp = 0
    merchant_referral_rate_bp: RateBp = 0
    commission_freeze_days: Annotated[int, Field(ge=0, le=365, strict=True)] = 7
    max_commission_depth: Annotated[int, Field(ge=1, le=HARD_MAX_DEPTH, strict=True)] = 2
    # app/wallet/withdrawals.py reads these two straight from the same JSON: keep their names.
    withdrawal_min_fen: Annotated[int, Field(ge=1, strict=True)] = 100
    withdrawal_fee_bp: RateBp = 0


class TeamLevelIn(BaseModel):
    """One row of TeamLevelInput, checked before it touches the table."""

    model_config = ConfigDict(extra="forbid")

    id: int | None = None
    name: Annotated[str, Field(min_length=1, max_length=32)]
    rate_bp: RateBp
    shareholder: Annotated[bool, Field(strict=True)]


async def load_distribution_settings(
    conn: BaseDBAsyncClient | None = None,
) -> DistributionSettings:
    from app.rebate.models import PluginSettings

    query = PluginSettings.filter(key=SETTINGS_KEY)
    if conn is not None:
        query = query.using_db(conn)
    row = await query.first()
    data = row.data if row is not None and isinstance(row.data, dict) else {}
    return DistributionSettings.model_validate(data)


async def save_distribution_settings(
    settings: DistributionSettings, conn: BaseDBAsyncClient
) -> None:
    from app.rebate.models import PluginSettings

    data = settings.model_dump(mode="json")
    updated = await PluginSettings.filter(key=SETTINGS_KEY).using_db(conn).update(data=data)
    if not updated:
        await PluginSettings.create(key=SETTINGS_KEY, data=data, using_db=conn)


def _level_id(value: Any, field: str) -> int | None:
    # GraphQL IDs arrive as strings.
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadInput(f"{field}: not an id", field=field)
    try:
        parsed = int(value)
    except (TypeError, ValueError):
        raise BadInput(f"{field}: not an id", field=field) from None
    if parsed <= 0:
        raise BadInput(f"{field}: not an id", field=field)
    return parsed


def _checked_levels(team_levels: list[dict[str, Any]]) -> list[TeamLevelIn]:
    checked = []
    for index, raw in enumerate(team_levels):
        prefix = f"teamLevels[{index}]"
        data = dict(raw)
        data["id"] = _level_id(data.get("id"), f"{prefix}.id")
        checked.append(validated(TeamLevelIn, data, prefix))
    return checked


async def list_team_levels(conn: BaseDBAsyncClient | None = None) -> list[TeamLevel]:
    query = TeamLevel.all().order_by("id")
    if conn is not None:
        query = query.using_db(conn)
    return await query


async def update_distribution_settings(
    patch: dict[str, Any], team_levels: list[dict[str, Any]] | None = None
) -> tuple[DistributionSettings, list[TeamLevel]]:
    """Apply a partial update and upsert the listed team levels; levels not listed stay as they are.

    Every field is non-nullable, so a null in the patch means "unchanged" (GraphQL input fields
    that were sent as null), not "clear".
    """
    patch = {key: value for key, value in patch.items() if value is not None}
    levels = _checked_levels(team_levels or [])
    async with in_transaction() as conn:
        current = await load_distribution_settings(conn)
        new = validated(DistributionSettings, merge_patch(current, patch))
        await save_distribution_settings(new, conn)
        for index, level in enumerate(levels):
            values = {
                "name": level.name,
                "rate_bp": level.rate_bp,
                "shareholder": level.shareholder,
            }
            if level.id is None:
                await TeamLevel.create(**values, using_db=conn)
            elif not await TeamLevel.filter(id=level.id).using_db(conn).update(**values):
                raise NotFound(f"team level {level.id} not found", field=f"teamLevels[{index}].id")
        saved_levels = await list_team_levels(conn)
    return new, saved_levels
