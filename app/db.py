"""Tortoise configuration and the database's lifecycle (init, migrate, close)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import asyncpg
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url

MODEL_MODULES = [
    "app.members.models",
    "app.catalog.models",
    "app.orders.models",
    "app.rebate.models",
    "app.ledger.models",
    "app.notifications.models",
    "app.wallet.models",
    "app.merchants.models",
    "app.distribution.models",
]


class StatelessConnection(asyncpg.Connection):
    """A PostgreSQL connection returned to the pool without asyncpg's reset statement.

    The product keeps no session state (no advisory locks, LISTEN, cursors or session settings;
    `SET LOCAL` ends with its transaction), so the reset would cost one more round trip after
    every statement for nothing. An open transaction is still rolled back on release.
    """

    def get_reset_query(self) -> str:
        return ""


POOL_SIZE = 12


def _connection(database_url: str) -> str | dict[str, Any]:
    if not is_postgres(database_url):
        return database_url
    config = expand_db_url(database_url)
    config["credentials"]["connection_class"] = StatelessConnection
    # Tortoise's default of 5 made requests queue for a connection: under load a request waited
    # up to 94 ms for one while its own statement took 2 ms. A connection for each request in
    # flight, up to this; `?maxsize=N` in DATABASE_URL says otherwise.
    config["credentials"].setdefault("maxsize", POOL_SIZE)
    return config


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": _connection(database_url)},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "app.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _ensure_sqlite_folder(database_url: str) -> None:
    if database_url.startswith("sqlite://") and ":memory:" not in database_url:
        path = database_url.removeprefix("sqlite://").split("?", 1)[0]
        Path(path).parent.mkdir(parents=True, exist_ok=True)


async def init_db(database_url: str) -> None:
    _ensure_sqlite_folder(database_url)
    # Global fallback: the server opens the database in its lifespan task, and requests, jobs and
    # tests run in other tasks that must see the same connections.
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def migrate_db(database_url: str) -> None:
    """Apply every migration of app/migrations (`rebate migrate`)."""
    from tortoise.migrations.api import migrate

    _ensure_sqlite_folder(database_url)
    await migrate(config=tortoise_config(database_url))
    await Tortoise.close_connections()


async def close_db() -> None:
    await Tortoise.close_connections()


def is_postgres(database_url: str | None = None) -> bool:
    url = database_url or os.environ.get("DATABASE_URL", "")
    return url.startswith(("postgres://", "postgresql://", "asyncpg://"))


# For Tortoise's own command line (`tortoise -c app.db.TORTOISE_ORM makemigrations`).
TORTOISE_ORM = tortoise_config(os.environ.get("DATABASE_URL", "sqlite://var/rebate.sqlite3"))
