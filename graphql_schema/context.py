"""Who is asking, and the services a resolver may call, for one GraphQL request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from app.config import Settings
from app.errors import Forbidden, Unauthenticated
from app.members.tokens import is_admin_token, read_token
from graphql_schema.dataloaders import Loaders


@dataclass
class Context:
    request: Request
    settings: Settings
    services: Any  # app.main.Services: the WeChat gateway and the job runner
    user_id: int | None = None
    is_admin: bool = False
    # A bad token is reported by the first resolver that needs to know who is asking.
    auth_error: Unauthenticated | None = None
    loaders: Loaders = field(default_factory=Loaders)
    # The entries page read before execution (`page_cache`): (its arguments, its rows).
    page_rows: tuple[Any, list[Any]] | None = None

    @classmethod
    def from_request(cls, request: Request, settings: Settings, services: Any) -> Context:
        context = cls(request=request, settings=settings, services=services)
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if header and (scheme.lower() != "bearer" or not token.strip()):
            context.auth_error = Unauthenticated("Authorization must be 'Bearer <token>'")
            return context
        token = token.strip()
        if token:
            if is_admin_token(token, settings.admin_token):
                context.is_admin = True
            else:
                try:
                    context.user_id = read_token(token, settings.secret_key)
                except Unauthenticated as exc:
                    context.auth_error = exc
        return context

    def now(self) -> datetime:
        return datetime.now(UTC)

    def require_user(self) -> int:
        if self.auth_error is not None:
            raise self.auth_error
        if self.user_id is None:
            if self.is_admin:
                raise Forbidden("the operator token is not a consumer; log in as a user")
            raise Unauthenticated("log in first")
        return self.user_id

    def require_admin(self) -> None:
        if self.auth_error is not None:
            raise self.auth_error
        if not self.is_admin:
            if self.user_id is None:
                raise Unauthenticated("the operator's token is required")
            raise Forbidden("only the operator may do this")

    def require_any(self) -> None:
        if self.auth_error is not None:
            raise self.auth_error
        if not self.is_admin and self.user_id is None:
            raise Unauthenticated("log in first")

    async def store_turnover(self, store: Any) -> Any:
        from graphql_schema.resolvers import store_turnover

        return await store_turnover(self, store)

    async def store_orders(self, store: Any, first: int | None, after: str | None) -> Any:
        from graphql_schema.resolvers import store_orders

        return await store_orders(self, store, first, after)

    async def entry_process(self, entry: Any, first: int, after: str | None) -> Any:
        from graphql_schema.resolvers import entry_process

        return await entry_process(self, entry, first, after)
