"""Mutations are limited per user (or per address when anonymous), queries are not."""

from __future__ import annotations

from collections.abc import AsyncIterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType


class MutationRateLimit(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        if self.execution_context.operation_type == OperationType.MUTATION:
            context = self.execution_context.context
            limiter = getattr(getattr(context, "services", None), "limiter", None)
            if limiter is not None:
                if context.user_id is not None:
                    key = f"user:{context.user_id}"
                else:
                    client = context.request.client
                    key = f"ip:{client.host if client else 'unknown'}"
                if not await limiter.allow(key):
                    raise GraphQLError(
                        "too many changes in a minute: wait a little and try again",
                        extensions={"code": "RATE_LIMITED"},
                    )
        yield
