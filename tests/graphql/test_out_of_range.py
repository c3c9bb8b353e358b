"""A value the contract's `Int` cannot carry is reported as OUT_OF_RANGE, never as INTERNAL."""

from __future__ import annotations

import strawberry

from graphql_schema.errors import ErrorCodes


@strawberry.type
class Query:
    @strawberry.field
    def amount_ahead_fen(self) -> int | None:
        return 12_999_987_000  # ¥129,999,870.00: beyond 2³¹−1 fen

    @strawberry.field
    def position(self) -> int:
        return 1_000_000


def test_an_amount_beyond_32_bits_is_null_with_its_own_code() -> None:
    schema = strawberry.Schema(Query, extensions=[ErrorCodes])
    result = schema.execute_sync("{ amountAheadFen position }")
    assert result.data == {"amountAheadFen": None, "position": 1_000_000}
    [error] = result.errors
    assert error.extensions == {"code": "OUT_OF_RANGE"}
    assert "32-bit" in error.message and error.path == ["amountAheadFen"]
