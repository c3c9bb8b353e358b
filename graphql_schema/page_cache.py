"""Whole answers of the consumer's entries screen, kept while what they were made from stays.

The entries screen (`myEntries` without payouts) is polled: a consumer watching a queue asks the
same query again and again. Its answer is a function of the page's rows, each read with its
queue's figure version and the settings' revision (`progress.list_entries`), and of the day (the
inflow behind the estimated wait). So for a query of that shape the page's rows are read first,
one statement, and when the rows and the day are those a kept answer was made from, for the same
user, query and variables, that answer is given as it was. Otherwise the query runs as usual, on
the rows already read, and its answer is kept.

Only queries of exactly one `myEntries` field whose fields are all decided by those rows are
kept: no `process` (payers' names and pictures change without any entry changing), no fragments,
no directives. Anything the shape check or the arguments do not settle goes the usual way, which
also reports every error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.types import ExecutionResult

from app.config import get_settings
from app.errors import BadInput
from app.rebate import progress
from app.rebate.answers import Answers
from graphql_schema.context import Context
from graphql_schema.convert import decode_cursor, page_size

# The fields of an entry that its row (and its queue's version, the settings' revision and the
# day) decide; `process` is not among them.
ENTRY_FIELDS = frozenset(
    {
        "__typename",
        "id",
        "queueKey",
        "orderId",
        "orderLineId",
        "status",
        "paidFen",
        "ratioBp",
        "ratioSource",
        "entitlementFen",
        "rewardedFen",
        "remainingFen",
        "progressBp",
        "number",
        "position",
        "amountAheadFen",
        "estimatedWaitDays",
        "lotteryAvailable",
        "createdAt",
        "endedAt",
    }
)
PAGE_FIELDS = frozenset({"__typename", "items", "nextCursor"})
MAX_PAGES = 2_000
# The kept shape is short (every entry field is about 60 tokens); a longer query is not looked at
# here, so this parse costs little whatever is sent (the schema's own limits apply after).
MAX_SHAPE_TOKENS = 400


@dataclass(frozen=True, slots=True)
class PageArguments:
    status: Any
    size: int
    before_id: int | None


@dataclass(slots=True)
class PageReading:
    """The rows read for one request, and what its answer is kept under."""

    key: tuple
    made_from: tuple[tuple[progress.EntryRow, ...], date]
    arguments: PageArguments
    rows: list[progress.EntryRow]


class PageCache:
    def __init__(self, size: int = MAX_PAGES) -> None:
        self._kept = Answers(size=size)

    async def read(
        self,
        schema: GraphQLSchema,
        query: str | None,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Context,
    ) -> tuple[PageReading | None, ExecutionResult | None]:
        """(the reading, the kept answer if it still holds); (None, None) when the request is
        not one whose answer is kept."""
        if context.user_id is None or context.auth_error is not None or not query:
            return None, None
        shape = _shape(query)
        if shape is None:
            return None, None
        operation, field = shape
        arguments = _arguments(schema, operation, field, variables)
        if arguments is None:
            return None, None
        rows = await progress.list_entries(
            context.user_id,
            status=arguments.status,
            before_id=arguments.before_id,
            limit=arguments.size + 1,
        )
        today = context.now().astimezone(get_settings().timezone).date()
        reading = PageReading(
            key=(
                context.user_id,
                query,
                operation_name,
                json.dumps(variables, sort_keys=True, default=str),
            ),
            made_from=(tuple(rows), today),
            arguments=arguments,
            rows=rows,
        )
        kept = self._kept.get(reading.key)
        if kept is not None and kept[0] == reading.made_from:
            return reading, ExecutionResult(data=json.loads(kept[1]), errors=None)
        return reading, None

    def keep(self, reading: PageReading, result: ExecutionResult) -> None:
        if result.errors or result.data is None:
            return
        self._kept.put(reading.key, (reading.made_from, json.dumps(result.data)))

    def clear(self) -> None:
        self._kept.clear()


pages = PageCache()


def forget_pages() -> None:
    """Drop every kept answer (a test empties the database under a running process)."""
    pages.clear()


@lru_cache(maxsize=256)
def _shape(query: str) -> tuple[OperationDefinitionNode, FieldNode] | None:
    """The operation and its `myEntries` field when the query is of the kept shape."""
    if "myEntries" not in query:
        return None
    try:
        document: DocumentNode = parse(query, no_location=True, max_tokens=MAX_SHAPE_TOKENS)
    except GraphQLError:
        return None
    if len(document.definitions) != 1:
        return None
    operation = document.definitions[0]
    if (
        not isinstance(operation, OperationDefinitionNode)
        or operation.operation != OperationType.QUERY
        or operation.directives
        or len(operation.selection_set.selections) != 1
    ):
        return None
    field = operation.selection_set.selections[0]
    if (
        not isinstance(field, FieldNode)
        or field.name.value != "myEntries"
        or field.directives
        or field.selection_set is None
    ):
        return None
    for page_field in _plain_fields(field.selection_set, PAGE_FIELDS) or [None]:
        if page_field is None:
            return None
        if page_field.name.value == "items":
            if page_field.selection_set is None:
                return None
            entry_fields = _plain_fields(page_field.selection_set, ENTRY_FIELDS)
            if not entry_fields or any(f.selection_set is not None for f in entry_fields):
                return None
        elif page_field.selection_set is not None:
            return None
    return operation, field


def _plain_fields(selection_set: SelectionSetNode, allowed: frozenset[str]) -> list[FieldNode]:
    """The selections when all are fields among `allowed` without arguments or directives;
    else an empty list."""
    fields = []
    for selection in selection_set.selections:
        if (
            not isinstance(selection, FieldNode)
            or selection.name.value not in allowed
            or selection.arguments
            or selection.directives
        ):
            return []
        fields.append(selection)
    return fields


def _arguments(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    field: FieldNode,
    variables: dict[str, Any] | None,
) -> PageArguments | None:
    """The page the resolver would read, or None where the usual way must speak."""
    definition = schema.query_type.fields["myEntries"] if schema.query_type else None
    if definition is None:
        return None
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):  # the usual way reports the variables' errors
        return None
    try:
        values = get_argument_values(definition, field, coerced)
        return PageArguments(
            status=values.get("status"),
            size=page_size(values.get("first")),
            before_id=decode_cursor("entry", values.get("after")),
        )
    except (GraphQLError, BadInput):
        return None
