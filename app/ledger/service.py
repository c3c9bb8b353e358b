"""Posting balanced transactions: one per cause, in the caller's database transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from app.errors import Conflict
from app.ledger.models import Account, LedgerTransaction, Posting


class Currency(StrEnum):
    FEN = "FEN"
    POINTS = "POINTS"
    LOVE = "LOVE"


@dataclass(frozen=True, slots=True)
class AccountRef:
    code: str
    currency: Currency
    may_go_negative: bool = False
    user_id: int | None = None


# The platform's side of the books. The outside world (WeChat Pay) is where cash comes from.
EXTERNAL_WECHAT = AccountRef("external:wechat_pay", Currency.FEN, may_go_negative=True)
PLATFORM_SALES = AccountRef("platform:sales", Currency.FEN, may_go_negative=True)
PLATFORM_RETURNED = AccountRef("platform:rebate_returned", Currency.FEN, may_go_negative=True)
# Points and love value are issued by the platform (exchange, random return) and come back to it
# when spent as deduction at checkout.
PLATFORM_POINTS = AccountRef("platform:points", Currency.POINTS, may_go_negative=True)
PLATFORM_LOVE_VALUE = AccountRef("platform:love", Currency.LOVE, may_go_negative=True)


def user_cash(user_id: int) -> AccountRef:
    return AccountRef(f"user:{user_id}:cash", Currency.FEN, user_id=user_id)


def user_commission_pending(user_id: int) -> AccountRef:
    return AccountRef(f"user:{user_id}:commission_pending", Currency.FEN, user_id=user_id)


def user_points(user_id: int) -> AccountRef:
    return AccountRef(f"user:{user_id}:points", Currency.POINTS, user_id=user_id)


def user_love_value(user_id: int) -> AccountRef:
    return AccountRef(f"user:{user_id}:love", Currency.LOVE, user_id=user_id)


def user_love_value_frozen(user_id: int) -> AccountRef:
    return AccountRef(f"user:{user_id}:love_frozen", Currency.LOVE, user_id=user_id)


class InsufficientBalance(Conflict):
    pass


async def account_id(ref: AccountRef, conn: BaseDBAsyncClient) -> int:
    found = await Account.filter(code=ref.code).using_db(conn).values_list("id", flat=True)
    if found:
        return found[0]
    # Two transactions may open the same account at once: the loser's insert is ignored instead
    # of aborting its transaction, and it reads the winner's row.
    await Account.bulk_create(
        [
            Account(
                code=ref.code,
                currency=ref.currency.value,
                may_go_negative=ref.may_go_negative,
                user_id=ref.user_id,
            )
        ],
        ignore_conflicts=True,
        using_db=conn,
    )
    (created,) = await Account.filter(code=ref.code).using_db(conn).values_list("id", flat=True)
    return created


async def already_posted(key: str, conn: BaseDBAsyncClient) -> bool:
    return await LedgerTransaction.filter(key=key).using_db(conn).exists()


async def post(
    key: str,
    kind: str,
    postings: Sequence[tuple[AccountRef, int]],
    conn: BaseDBAsyncClient,
) -> bool:
    """Write one balanced transaction keyed by its cause; False when the key was posted before.

    Must run inside the caller's database transaction, so that the books and the state they
    explain commit together. A debit that would take a non-negative account below zero raises.
    """
    sums: dict[Currency, int] = defaultdict(int)
    for ref, amount in postings:
        sums[ref.currency] += amount
    unbalanced = {currency: total for currency, total in sums.items() if total != 0}
    if unbalanced:
        raise ValueError(f"ledger transaction {key} does not balance: {unbalanced}")
    if await already_posted(key, conn):
        return False
    txn = await LedgerTransaction.create(key=key, kind=kind, using_db=conn)
    merged: dict[AccountRef, int] = defaultdict(int)
    for ref, amount in postings:
        if amount:
            merged[ref] += amount
    rows = []
    # Accounts in code order: concurrent transactions touching the same accounts lock them in the
    # same order and cannot deadlock each other.
    for ref in sorted(merged, key=lambda r: r.code):
        amount = merged[ref]
        if amount == 0:
            continue
        acc_id = await account_id(ref, conn)
        query = Account.filter(id=acc_id)
        if amount < 0 and not ref.may_go_negative:
            query = query.filter(balance__gte=-amount)
        updated = await query.using_db(conn).update(balance=F("balance") + amount)
        if not updated:
            raise InsufficientBalance(f"not enough in {ref.code} for {-amount}")
        rows.append(
            Posting(txn_id=txn.id, account_id=acc_id, currency=ref.currency.value, amount=amount)
        )
    if rows:
        await Posting.bulk_create(rows, using_db=conn)
    return True


async def balance_of(ref: AccountRef, conn: BaseDBAsyncClient | None = None) -> int:
    query = Account.filter(code=ref.code)
    if conn is not None:
        query = query.using_db(conn)
    found = await query.values_list("balance", flat=True)
    return found[0] if found else 0
