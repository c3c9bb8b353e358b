"""Posting a batch of ledger transactions: the fewest statements by default, or the balances
moved by the last statement (`balances_last`), so that the rows every payment and settlement
locks stay locked for the commit alone."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

import pytest
from tortoise.transactions import in_transaction

from app.ledger.models import Posting
from app.ledger.service import (
    EXTERNAL_WECHAT,
    PLATFORM_SALES,
    InsufficientBalance,
    Txn,
    balance_of,
    post_many,
    user_cash,
)
from app.members.service import login_with_openid
from tests.support.sql_count import Listening


class _Statements(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.sent.append(record.getMessage().lstrip())


@contextlib.contextmanager
def _logged() -> Iterator[list[str]]:
    handler = _Statements()
    with Listening(handler):
        yield handler.sent


def _written(statement: str) -> str | None:
    """The table a statement writes (COPY on PostgreSQL, INSERT on SQLite), if any."""
    found = re.search(r"^COPY (\w+)|INSERT INTO (\w+)|^UPDATE (\w+)", statement)
    return next(name for name in found.groups() if name) if found else None


def _payment(key: str, amount: int, user_id: int) -> Txn:
    return Txn(
        key,
        "test",
        [(EXTERNAL_WECHAT, -amount), (PLATFORM_SALES, amount - 1), (user_cash(user_id), 1)],
    )


async def _users(count: int) -> list[int]:
    return [(await login_with_openid(f"journal-{i}", "session")).id for i in range(count)]


async def test_by_default_one_statement_opens_the_accounts_and_moves_the_balances(server):
    one, two = await _users(2)
    with _logged() as sent:
        async with in_transaction() as conn:
            posted = await post_many([_payment("t:1", 500, one), _payment("t:2", 300, two)], conn)
    writes = [(_written(s), s) for s in sent if _written(s)]
    assert [table for table, _ in writes] == [
        "ledger_transaction",
        "ledger_account",
        "ledger_posting",
    ]
    assert "DO UPDATE SET balance" in writes[1][1]
    assert posted == {"t:1", "t:2"}
    await _assert_booked(one, two)


async def test_balances_last_moves_them_after_the_postings_in_the_last_statement(server):
    one, two = await _users(2)
    with _logged() as sent:
        async with in_transaction() as conn:
            posted = await post_many(
                [_payment("t:1", 500, one), _payment("t:2", 300, two)], conn, balances_last=True
            )
    writes = [(_written(s), s) for s in sent if _written(s)]
    assert [table for table, _ in writes] == [
        "ledger_transaction",
        "ledger_account",  # the users' cash accounts opened, not locked
        "ledger_posting",
        "ledger_account",
    ]
    assert "DO NOTHING" in writes[1][1]
    assert "DO UPDATE SET balance" in writes[-1][1]
    assert posted == {"t:1", "t:2"}
    await _assert_booked(one, two)


async def _assert_booked(one: int, two: int) -> None:
    assert await balance_of(EXTERNAL_WECHAT) == -800
    assert await balance_of(PLATFORM_SALES) == 798
    assert (await balance_of(user_cash(one)), await balance_of(user_cash(two))) == (1, 1)
    assert await Posting.all().count() == 6


@pytest.mark.parametrize("balances_last", [False, True])
async def test_a_balance_that_would_go_below_zero_is_not_moved_and_nothing_commits(
    server, balances_last
):
    (user,) = await _users(1)
    overdraw = Txn("t:over", "test", [(user_cash(user), -5), (PLATFORM_SALES, 5)])
    try:
        async with in_transaction() as conn:
            await post_many([overdraw], conn, balances_last=balances_last)
    except InsufficientBalance as exc:
        assert f"user:{user}:cash" in str(exc)
    else:
        raise AssertionError("an overdraft was posted")
    assert await balance_of(user_cash(user)) == 0
    assert await balance_of(PLATFORM_SALES) == 0
    assert await Posting.all().count() == 0
