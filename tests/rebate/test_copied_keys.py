"""Columns that copy what a row's own key leads to (an entry's order and buyer, a contribution's
order, a payout's paying order): the database checks the keys, `audit` checks the copies."""

from __future__ import annotations

import pytest
from tortoise import connections

from app.db import is_postgres
from app.ledger.audit import audit
from app.rebate.models import Contribution, Payout, QueueEntry
from app.rebate.service import settle_orders
from tests.support.orders import NOW, paid_orders

# (table, column, the violation audit reports when the copy is wrong)
COPIES = (
    ("queue_entry", "order_id", "entry {} names another order or buyer than its line's"),
    ("queue_entry", "user_id", "entry {} names another order or buyer than its line's"),
    ("contribution", "order_id", "contribution {} names another order than its line's"),
    ("payout", "from_order_id", "payout {} names another order than its contribution's"),
)


async def test_audit_finds_a_copy_that_disagrees_with_its_key(server):
    first, second, third = await paid_orders(3, prefix="copies")
    await settle_orders([first, second, third], now=NOW)
    assert await audit() == []
    entry = await QueueEntry.get(order_id=first)
    # The first order's contribution found nobody waiting: no payout copies its order.
    contribution = await Contribution.get(order_id=first)
    assert not await Payout.filter(contribution_id=contribution.id).exists()
    payout = await Payout.filter(from_order_id=second).first()
    assert payout is not None
    other_user = (await QueueEntry.get(order_id=third)).user_id
    rows = {"queue_entry": entry.id, "contribution": contribution.id, "payout": payout.id}
    wrong = {"order_id": third, "user_id": other_user, "from_order_id": third}
    conn = connections.get("default")
    for table, column, violation in COPIES:
        row_id = rows[table]
        (kept,) = await conn.execute_query_dict(
            f"SELECT {column} AS v FROM {table} WHERE id = {row_id}"
        )
        await conn.execute_query(
            f"UPDATE {table} SET {column} = {wrong[column]} WHERE id = {row_id}"
        )
        assert await audit() == [violation.format(row_id)]
        await conn.execute_query(f"UPDATE {table} SET {column} = {kept['v']} WHERE id = {row_id}")
    assert await audit() == []


async def test_on_postgresql_the_keys_are_checked_and_the_copies_are_not(server):
    if not is_postgres():
        pytest.skip("SQLite keeps the checks of the copies")
    rows = await connections.get("default").execute_query_dict(
        "SELECT c.conrelid::regclass::text AS tab, a.attname AS col FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "WHERE c.contype = 'f' AND c.conrelid::regclass::text IN "
        "('queue_entry', 'contribution', 'payout')"
    )
    checked = {(row["tab"], row["col"]) for row in rows}
    assert checked == {
        ("queue_entry", "queue_id"),
        ("queue_entry", "line_id"),
        ("contribution", "queue_id"),
        ("contribution", "line_id"),
        ("payout", "contribution_id"),
        ("payout", "entry_id"),
    }
    assert not checked & {(table, column) for table, column, _ in COPIES}
