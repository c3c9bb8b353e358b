"""Pure decisions of SPEC §6 that need no database: limits and the random-return seat draw."""

from __future__ import annotations

import random
from dataclasses import dataclass

from app.rebate.settings import RandomReturn, RebateRule


@dataclass(frozen=True, slots=True)
class LimitScope:
    """The scope whose limit applies to a line, and the limit itself."""

    scope: int  # index into the line's scopes: 0 the most specific
    limit: int


def limit_scopes(scopes: list[RebateRule]) -> tuple[LimitScope | None, LimitScope | None]:
    """(per-day, total): each from the most specific scope that sets it."""
    per_day = next(
        (
            LimitScope(i, r.limit_per_user_per_day)
            for i, r in enumerate(scopes)
            if r.limit_per_user_per_day is not None
        ),
        None,
    )
    total = next(
        (
            LimitScope(i, r.limit_per_user_total)
            for i, r in enumerate(scopes)
            if r.limit_per_user_total is not None
        ),
        None,
    )
    return per_day, total


def random_return_for(
    queue_key: str, scope_setting: RandomReturn | None, plugin: RandomReturn
) -> RandomReturn:
    """A per-store or per-cashier queue takes its own setting if it has one; others the plugin's."""
    if queue_key.startswith(("store:", "cashier:")) and scope_setting is not None:
        return scope_setting
    return plugin


@dataclass(slots=True)
class SeatGroup:
    """The random-return group being filled in one queue (stored on the queue row)."""

    group_size: int = 0
    points_seats: int = 0
    seats_left: int = 0
    points_left: int = 0

    def draw(self, config: RandomReturn, rng: random.Random) -> bool:
        """Seat the next eligible entry; True when it converts to points.

        Drawing without replacement inside each group gives exactly `pointsSeats` conversions per
        group, each seat equally likely. A changed configuration starts a new group.
        """
        size = config.cash_seats + config.points_seats
        if (self.group_size, self.points_seats) != (
            size,
            config.points_seats,
        ) or self.seats_left == 0:
            self.group_size, self.points_seats = size, config.points_seats
            self.seats_left, self.points_left = size, config.points_seats
        converts = rng.randrange(self.seats_left) < self.points_left
        self.seats_left -= 1
        if converts:
            self.points_left -= 1
        return converts
