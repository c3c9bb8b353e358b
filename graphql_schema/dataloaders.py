"""Per-request DataLoaders: what many objects of one answer need, read in one go."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from strawberry.dataloader import DataLoader
from tortoise.models import Model

from app.members.models import MemberLevel, TeamLevel
from app.orders.models import OrderLine
from app.rebate import progress
from app.rebate.settings import RebateSettings, load_rebate_settings, rebate_settings_at

M = TypeVar("M", bound=Model)


def _by_id(model: type[M]) -> Callable[[list[int]], Awaitable[list[M | None]]]:
    """A batch function reading rows of `model` by id, None for an id that is gone."""

    async def load(ids: list[int]) -> list[M | None]:
        rows = {row.id: row for row in await model.filter(id__in=ids)}
        return [rows.get(row_id) for row_id in ids]

    return load


# (entry id, page size, payout id the page starts after)
PayoutPageKey = tuple[int, int, int | None]


@dataclass
class Loaders:
    """Created for each request, so nothing is shared between callers."""

    _settings: RebateSettings | None = None
    payouts: DataLoader[PayoutPageKey, list[progress.PayoutView]] = field(init=False)
    order_lines: DataLoader[int, list[OrderLine]] = field(init=False)
    member_levels: DataLoader[int, MemberLevel | None] = field(init=False)
    team_levels: DataLoader[int, TeamLevel | None] = field(init=False)

    def __post_init__(self) -> None:
        self.payouts = DataLoader(load_fn=self._load_payouts)
        self.order_lines = DataLoader(load_fn=self._load_order_lines)
        self.member_levels = DataLoader(load_fn=_by_id(MemberLevel))
        self.team_levels = DataLoader(load_fn=_by_id(TeamLevel))

    async def rebate_settings(self, revision: int | None = None) -> RebateSettings:
        """The plugin settings, read once per request, and not at all when the caller learnt
        their revision with its own rows and the settings last read are at it."""
        if self._settings is None:
            self._settings = rebate_settings_at(revision) or await load_rebate_settings()
        return self._settings

    async def _load_payouts(self, keys: list[PayoutPageKey]) -> list[list[progress.PayoutView]]:
        settings = await self.rebate_settings()
        # Entries asked with the same page shape are read together (in practice: all of them).
        by_shape: dict[tuple[int, int | None], list[int]] = defaultdict(list)
        for entry_id, size, after_id in keys:
            by_shape[(size, after_id)].append(entry_id)
        pages: dict[PayoutPageKey, list[progress.PayoutView]] = {}
        for (size, after_id), entry_ids in by_shape.items():
            found = await progress.payouts_of_entries(
                entry_ids, settings, after_id=after_id, limit=size
            )
            for entry_id in entry_ids:
                pages[(entry_id, size, after_id)] = found[entry_id]
        return [pages[key] for key in keys]

    async def _load_order_lines(self, order_ids: list[int]) -> list[list[OrderLine]]:
        lines: dict[int, list[OrderLine]] = {order_id: [] for order_id in order_ids}
        for line in await OrderLine.filter(order_id__in=order_ids).order_by("order_id", "line_no"):
            lines[line.order_id].append(line)
        return [lines[order_id] for order_id in order_ids]
