"""Posting balanced transactions: one per cause, in the caller's database transaction, one at a
time or a whole batch in a fixed number of statements."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from tortoise.backends.base.client import BaseDBAsyncClient

from app.bulk import Params, copy_rows, insert_rows
from app.errors import Conflict
from app.ledger.models import Account, LedgerTransaction


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
    return (await account_ids([ref], conn))[ref.code]


async def account_ids(refs: Iterable[AccountRef], conn: BaseDBAsyncClient) -> dict[str, int]:
    """The ids of the accounts of `refs` by code, opening the missing ones (three statements at
    most)."""
    wanted = {ref.code: ref for ref in refs}
    if not wanted:
        return {}
    found = await _account_rows(wanted, conn)
    missing = [ref for code, ref in wanted.items() if code not in found]
    if missing:
        # Two transactions may open the same account at once: the loser's insert is ignored
        # instead of aborting its transaction, and it reads the winner's row.
        opened = await insert_rows(
            conn,
            "ledger_account",
            _ACCOUNT_COLUMNS,
            [
                (ref.code, ref.currency.value, 0, ref.may_go_negative, ref.user_id)
                for ref in sorted(missing, key=lambda r: r.code)
            ],
            on_conflict="(code) DO NOTHING",
            returning="id, code",
        )
        found.update((row["code"], row["id"]) for row in opened)
        if lost := {ref.code: ref for ref in missing if ref.code not in found}:
            found.update(await _account_rows(lost, conn))
    return found


_ACCOUNT_COLUMNS = (
    ("code", "text"),
    ("currency", "text"),
    ("balance", "bigint"),
    ("may_go_negative", "bool"),
    ("user_id", "int"),
)


async def _account_rows(wanted: dict[str, AccountRef], conn: BaseDBAsyncClient) -> dict[str, int]:
    p = Params(conn)
    sql = f"SELECT id, code FROM ledger_account WHERE {p.among('code', sorted(wanted))}"
    rows = await conn.execute_query_dict(sql, p.values)
    return {row["code"]: row["id"] for row in rows}


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
    return bool(await post_many([Txn(key, kind, postings)], conn))


@dataclass(frozen=True, slots=True)
class Txn:
    """One transaction to post: its cause's key, its kind, and its postings."""

    key: str
    kind: str
    postings: Sequence[tuple[AccountRef, int]]


async def post_many(
    txns: Sequence[Txn], conn: BaseDBAsyncClient, *, balances_last: bool = False
) -> set[str]:
    """Post many balanced transactions in a fixed number of statements; returns the keys
    posted now. A key posted before (or twice in `txns`) is skipped, as `post` skips it.

    Each account's balance moves once, by the sum of its postings here; a non-negative account
    that this sum would take below zero raises, and the caller's transaction must not commit.
    `balances_last` as for `Journal.close`.
    """
    first: dict[str, Txn] = {}
    for txn in txns:
        _check_balanced(txn.key, txn.postings)
        first.setdefault(txn.key, txn)
    journal = Journal(conn)
    opened = await journal.open((txn.key, txn.kind) for txn in first.values())
    await journal.close(
        [
            (txn.key, ref, amount)
            for txn in first.values()
            if txn.key in opened
            for ref, amount in txn.postings
        ],
        balances_last=balances_last,
    )
    return opened


def _check_balanced(key: str, postings: Iterable[tuple[AccountRef, int]]) -> None:
    sums: dict[Currency, int] = defaultdict(int)
    for ref, amount in postings:
        sums[ref.currency] += amount
    unbalanced = {currency: total for currency, total in sums.items() if total != 0}
    if unbalanced:
        raise ValueError(f"ledger transaction {key} does not balance: {unbalanced}")


Leg = tuple[str, AccountRef, int]  # (transaction key, account, amount)


class Journal:
    """Ledger transactions written in parts inside one database transaction: opened by their
    keys before their amounts are known, their postings written as they become known, every
    balance moved once at the end. A caller writes early what it knows early, and keeps the
    writes after its hottest lock (a queue's) few; `post_many` is the same in one go.

    Opening takes the keys: a key posted before is not opened, and its legs are dropped.
    """

    def __init__(self, conn: BaseDBAsyncClient) -> None:
        self.conn = conn
        self.txn_ids: dict[str, int] = {}
        self.account_ids: dict[str, int] = {}
        self.totals: dict[str, tuple[AccountRef, int]] = {}
        self.sums: dict[tuple[str, Currency], int] = defaultdict(int)

    async def open(self, keys: Iterable[tuple[str, str]]) -> set[str]:
        """Open a transaction per (key, kind); returns the keys opened now."""
        wanted = {key: kind for key, kind in keys if key not in self.txn_ids}
        if not wanted:
            return set()
        # The unique key decides: a key another transaction posted (or is posting) is skipped.
        created = datetime.now(UTC)
        inserted = await insert_rows(
            self.conn,
            "ledger_transaction",
            (("key", "text"), ("kind", "text"), ("created_at", "timestamptz")),
            [(key, kind, created) for key, kind in wanted.items()],
            on_conflict="(key) DO NOTHING",
            returning="id, key",
        )
        opened = {row["key"]: row["id"] for row in inserted}
        self.txn_ids.update(opened)
        return set(opened)

    def _rows(self, legs: Iterable[Leg]) -> list[tuple[int, AccountRef, int]]:
        """The legs of opened transactions, merged per transaction and account, counted."""
        merged: dict[tuple[str, AccountRef], int] = defaultdict(int)
        for key, ref, amount in legs:
            if key in self.txn_ids and amount:
                merged[(key, ref)] += amount
        rows = []
        for (key, ref), amount in merged.items():
            self.sums[(key, ref.currency)] += amount
            if amount:
                total = self.totals.get(ref.code, (ref, 0))[1]
                self.totals[ref.code] = (ref, total + amount)
                rows.append((self.txn_ids[key], ref, amount))
        return rows

    async def write(self, legs: Iterable[Leg]) -> None:
        """Write postings now, leaving the balances to `close` (their accounts are opened if
        missing, not locked)."""
        await self._write_rows(self._rows(legs))

    async def close(self, legs: Iterable[Leg] = (), *, balances_last: bool = False) -> None:
        """Write the last postings and move every balance; every opened transaction must
        balance by now.

        A moved balance stays locked until the caller commits, and the platform's accounts are
        in every payment and settlement. By default one statement opens the missing accounts
        and moves the balances, and the postings follow: the fewest statements, for a caller
        that holds a busier lock of its own throughout (a queue's). With `balances_last` the
        accounts are looked up (or opened) first and the postings written, and the balances
        move in the last statement: one statement more, and concurrent callers wait for each
        other over their commits alone, not over the postings' writing and key checks too.
        """
        rows = self._rows(legs)
        unbalanced = sorted(
            f"{key} {currency.value}" for (key, currency), t in self.sums.items() if t
        )
        if unbalanced:
            raise ValueError(f"ledger transactions do not balance: {', '.join(unbalanced)}")
        if balances_last:
            await self._write_rows(rows)
        # One statement opens the missing accounts and moves every balance by its total,
        # account after account in code order: concurrent postings lock the rows in the same
        # order and cannot deadlock. A non-negative account the total would take below zero is
        # not moved.
        moved = await insert_rows(
            self.conn,
            "ledger_account",
            _ACCOUNT_COLUMNS,
            [
                (code, ref.currency.value, total, ref.may_go_negative, ref.user_id)
                for code, (ref, total) in sorted(self.totals.items())
            ],
            on_conflict="(code) DO UPDATE SET balance = ledger_account.balance + excluded.balance "
            "WHERE excluded.may_go_negative OR excluded.balance >= 0 "
            "OR ledger_account.balance + excluded.balance >= 0",
            returning="id, code, balance",
        )
        balances = {row["code"]: int(row["balance"]) for row in moved}
        self.account_ids.update((row["code"], row["id"]) for row in moved)
        for code, (ref, total) in self.totals.items():
            # Not moved, or opened below zero: the caller's transaction must not commit.
            if code not in balances or (not ref.may_go_negative and balances[code] < 0):
                raise InsufficientBalance(f"not enough in {code} for {-total}")
        self.totals.clear()
        if not balances_last:
            await self._write_rows(rows)

    async def _write_rows(self, rows: list[tuple[int, AccountRef, int]]) -> None:
        """Postings, their accounts opened if missing (not locked)."""
        missing = {ref.code: ref for _, ref, _ in rows if ref.code not in self.account_ids}
        if missing:
            self.account_ids.update(await account_ids(missing.values(), self.conn))
        ids = self.account_ids
        await copy_rows(
            self.conn,
            "ledger_posting",
            _POSTING_COLUMNS,
            [(txn_id, ids[ref.code], ref.currency.value, amount) for txn_id, ref, amount in rows],
        )


_POSTING_COLUMNS = (
    ("txn_id", "bigint"),
    ("account_id", "int"),
    ("currency", "text"),
    ("amount", "bigint"),
)


async def balance_of(ref: AccountRef, conn: BaseDBAsyncClient | None = None) -> int:
    query = Account.filter(code=ref.code)
    if conn is not None:
        query = query.using_db(conn)
    found = await query.values_list("balance", flat=True)
    return found[0] if found else 0
