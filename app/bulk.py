"""Statements over many rows at once, written once for PostgreSQL and SQLite.

The rows travel as one set named `v` in a WITH clause (PostgreSQL: arrays, unnested; SQLite: a
VALUES list), so an insert, update or upsert of a whole batch is one statement however many rows
it carries. `copy_rows` inserts by COPY on PostgreSQL, `reserve_ids` takes primary keys before
their rows are written, `Params` numbers the parameters of hand-written statements in either
dialect, `fetch_rows` reads rows without copying them, and `stored_moment` reads a moment back
in either.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

# (name, PostgreSQL type) of each column of `v`; "jsonb" columns are passed as JSON text.
Column = tuple[str, str]

# SQLite caps the parameters of one statement (999 before 3.32).
_SQLITE_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


def is_postgres(conn: BaseDBAsyncClient) -> bool:
    return conn.capabilities.dialect == "postgres"


class Params:
    """Parameters of one statement: `p(value)` adds one and returns its placeholder."""

    def __init__(self, conn: BaseDBAsyncClient) -> None:
        self.postgres = is_postgres(conn)
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}" if self.postgres else "?"

    def among(self, column: str, values: Iterable[Any]) -> str:
        """`column` is one of `values` (none: false)."""
        values = list(values)
        if self.postgres:
            return f"{column} = ANY({self(values)})"
        if not values:
            return "1 = 0"
        return f"{column} IN ({', '.join(self(value) for value in values)})"

    def marks(self, count: int, start: int = 1) -> str:
        """Placeholders `start`..`start + count - 1` of a statement sent with `execute_many`."""
        if self.postgres:
            return ", ".join(f"${index}" for index in range(start, start + count))
        return ", ".join("?" * count)


async def fetch_rows(
    conn: BaseDBAsyncClient, query: str, values: Sequence[Any]
) -> Sequence[Mapping[str, Any]]:
    """The rows of one read statement, each a mapping by column name. On PostgreSQL these are
    asyncpg's own records: a screen read on every refresh is not copied row by row into dicts."""
    if is_postgres(conn):
        async with conn.acquire_connection() as connection:
            # Logged as tortoise logs its own statements.
            conn.log.debug("%s: %s", query, values)
            return await connection.fetch(query, *values)
    return await conn.execute_query_dict(query, list(values))


def stored_moment(value: datetime | str) -> datetime:
    """A moment read back raw, as an aware datetime in UTC: SQLite gives the text it stored
    (written in UTC by isoformat), PostgreSQL a datetime."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is UTC:
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _chunks(conn: BaseDBAsyncClient, width: int, rows: Sequence[Sequence[Any]]):
    if is_postgres(conn):
        yield rows
        return
    size = max(1, _SQLITE_PARAMS // max(width, 1))
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _source(
    conn: BaseDBAsyncClient, columns: Sequence[Column], rows: Sequence[Sequence[Any]]
) -> tuple[str, list[Any]]:
    names = ", ".join(name for name, _ in columns)
    if is_postgres(conn):
        picked = ", ".join(
            f"u.{name}::jsonb" if kind == "jsonb" else f"u.{name}" for name, kind in columns
        )
        arrays = ", ".join(
            f"${i}::{'text' if kind == 'jsonb' else kind}[]"
            for i, (_, kind) in enumerate(columns, 1)
        )
        params = [list(values) for values in zip(*rows, strict=True)]
        return (
            f"WITH v ({names}) AS (SELECT {picked} FROM unnest({arrays}) AS u ({names})) ",
            params,
        )
    one = "(" + ", ".join("?" for _ in columns) + ")"
    params = [value for row in rows for value in row]
    return f"WITH v ({names}) AS (VALUES {', '.join(one for _ in rows)}) ", params


async def with_rows(
    conn: BaseDBAsyncClient,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    statement: str,
) -> list[dict[str, Any]]:
    """Run `statement`, which reads `rows` from `v`, and return the rows it returns.

    On SQLite a long list is cut into several statements, each within the parameter cap; a
    statement that reads `v` as a whole (not row by row) must not rely on seeing all of it.
    """
    if not rows:
        return []
    returned: list[dict[str, Any]] = []
    for chunk in _chunks(conn, len(columns), rows):
        head, params = _source(conn, columns, chunk)
        returned += await conn.execute_query_dict(head + statement, params)
    return returned


async def insert_rows(
    conn: BaseDBAsyncClient,
    table: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    *,
    on_conflict: str = "",
    returning: str = "",
) -> list[dict[str, Any]]:
    """INSERT every row in one statement; `returning` lists the columns to read back."""
    names = ", ".join(name for name, _ in columns)
    # WHERE true: SQLite parses an upsert after INSERT … SELECT only with a WHERE clause.
    statement = f"INSERT INTO {table} ({names}) SELECT {names} FROM v WHERE true"
    if on_conflict:
        statement += f" ON CONFLICT {on_conflict}"
    if returning:
        statement += f" RETURNING {returning}"
    return await with_rows(conn, columns, rows, statement)


_log = logging.getLogger("tortoise.db_client")


async def copy_rows(
    conn: BaseDBAsyncClient,
    table: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
) -> None:
    """INSERT every row, by COPY on PostgreSQL (its cheapest way in); no conflicts expected."""
    if not rows:
        return
    if not is_postgres(conn):
        await insert_rows(conn, table, columns, rows)
        return
    names = [name for name, _ in columns]
    # Logged as tortoise logs the statements it sends, so that counting them counts this one.
    _log.debug("COPY %s (%s) FROM STDIN: %s rows", table, ", ".join(names), len(rows))
    async with conn.acquire_connection() as connection:
        await connection.copy_records_to_table(table, records=rows, columns=names)


async def reserve_ids(conn: BaseDBAsyncClient, table: str, count: int) -> list[int]:
    """`count` new ids of `table`'s primary key, increasing, that no other insert will take."""
    if count <= 0:
        return []
    if is_postgres(conn):
        rows = await conn.execute_query_dict(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS id "
            "FROM generate_series(1, $1)",
            [count],
        )
        return sorted(row["id"] for row in rows)
    # SQLite: AUTOINCREMENT keys never go below sqlite_sequence; moving it is a write, so the
    # reservation holds the database's write lock until the transaction ends.
    await conn.execute_query(
        "INSERT INTO sqlite_sequence (name, seq) SELECT ?, 0 "
        "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)",
        [table, table],
    )
    rows = await conn.execute_query_dict(
        f"UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(id), 0) FROM {table})) "
        "+ ? WHERE name = ? RETURNING seq",
        [count, table],
    )
    top = int(rows[0]["seq"])
    return list(range(top - count + 1, top + 1))
