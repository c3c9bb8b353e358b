"""A user's wallet, read from the ledger, and points transfers between users (SPEC §9, §16)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction

from app.errors import BadInput, NotFound
from app.ledger.models import Account
from app.ledger.service import (
    InsufficientBalance,
    post,
    user_cash,
    user_commission_pending,
    user_love_value,
    user_love_value_frozen,
    user_points,
)
from app.members.models import User

MAX_TRANSFER_POINTS = 10**9


@dataclass(frozen=True, slots=True)
class WalletView:
    balance_fen: int
    pending_commission_fen: int
    points: int
    love_value: int
    love_value_frozen: int


async def wallet_of(user_id: int) -> WalletView:
    refs = {
        "balance_fen": user_cash(user_id),
        "pending_commission_fen": user_commission_pending(user_id),
        "points": user_points(user_id),
        "love_value": user_love_value(user_id),
        "love_value_frozen": user_love_value_frozen(user_id),
    }
    balances = dict(
        await Account.filter(code__in=[ref.code for ref in refs.values()]).values_list(
            "code", "balance"
        )
    )
    return WalletView(**{name: balances.get(ref.code, 0) for name, ref in refs.items()})


async def transfer_points(from_user_id: int, to_user_id: Any, points: Any, *, key: str) -> None:
    """转让: move points to another user; one transfer per `key` however often it is retried."""
    try:
        target = int(to_user_id)
    except (TypeError, ValueError):
        raise BadInput("toUserId is not a valid id", field="toUserId") from None
    if (
        not isinstance(points, int)
        or isinstance(points, bool)
        or not 0 < points <= MAX_TRANSFER_POINTS
    ):
        raise BadInput("points must be a positive whole number", field="points")
    if target == from_user_id:
        raise BadInput("points cannot be transferred to oneself", field="toUserId")
    async with in_transaction() as conn:
        if not await User.filter(id=target).using_db(conn).exists():
            raise NotFound(f"user {to_user_id} not found", field="toUserId")
        try:
            await post(
                key,
                "points_transfer",
                [(user_points(from_user_id), -points), (user_points(target), points)],
                conn,
            )
        except InsufficientBalance:
            raise BadInput("not enough points in the wallet", field="points") from None
