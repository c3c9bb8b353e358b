"""Counting the SQL statements one HTTP request runs, to catch N+1 reads.

The test server is wrapped in `CountingApp`: a request sent with the header `x-count-sql` gets
back `x-sql-statements`, the number of statements tortoise sent while it was handled (including
the tasks it started, such as DataLoader batches). Other requests and background jobs are not
counted: the counter lives in a context variable set only for the counted request.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

_statements: ContextVar[list[str] | None] = ContextVar("sql_statements", default=None)
_VERBS = ("select", "insert", "update", "delete", "with")


class _Collector(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        bucket = _statements.get()
        if bucket is None:
            return
        text = str(record.msg).lstrip().lower()
        if text.startswith(_VERBS) or (text.startswith("%s") and record.args):
            statement = record.getMessage().lstrip()
            if statement.lower().startswith(_VERBS):
                bucket.append(statement)


_collector = _Collector()


class Listening:
    """The statement log switched on, to `handler`, for the length of a `with` block (by
    default, to the collector of a counted request)."""

    def __init__(self, handler: logging.Handler = _collector) -> None:
        self.handler = handler

    def __enter__(self) -> None:
        logger = logging.getLogger("tortoise.db_client")
        self.saved = (logger.level, logger.propagate)
        logger.addHandler(self.handler)
        logger.setLevel(logging.DEBUG)
        # Only the handler needs the statements; pytest's capture would hoard them.
        logger.propagate = False

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger("tortoise.db_client")
        logger.removeHandler(self.handler)
        logger.setLevel(self.saved[0])
        logger.propagate = self.saved[1]


class CountingApp:
    """ASGI wrapper of the test server (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or b"x-count-sql" not in dict(scope.get("headers") or []):
            await self.app(scope, receive, send)
            return
        bucket: list[str] = []
        token = _statements.set(bucket)

        async def send_with_count(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.last = list(bucket)
                headers = list(message.get("headers") or [])
                headers.append((b"x-sql-statements", str(len(bucket)).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            with Listening():
                await self.app(scope, receive, send_with_count)
        finally:
            _statements.reset(token)
