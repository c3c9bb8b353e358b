"""Every error leaves the API with one `extensions.code`; unexpected ones are masked as INTERNAL."""

from __future__ import annotations

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from app.errors import DomainError

log = logging.getLogger("rebate.graphql")


def _coded(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    """`error` where it happened, with the message and extensions the caller may see."""
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


class ErrorCodes(MaskErrors):
    """Domain errors keep their message and gain their code; the rest say nothing of our insides."""

    def __init__(self) -> None:
        super().__init__(error_message="Internal error.")

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = []
        for error in errors:
            original = error.original_error
            if isinstance(original, DomainError):
                extensions = {"code": original.code}
                if original.field:
                    extensions["field"] = original.field
                processed.append(_coded(error, original.message, extensions))
            elif original is None:
                # Parsing and validation: the request itself is malformed.
                code = (error.extensions or {}).get("code", "BAD_USER_INPUT")
                processed.append(
                    _coded(error, error.message, {**(error.extensions or {}), "code": code})
                )
            elif isinstance(original, GraphQLError):
                # A value the contract's types cannot carry, such as more than 2³¹−1 fen in an
                # `Int`: the field is null and the caller is told why, not "internal error".
                processed.append(_coded(error, original.message, {"code": "OUT_OF_RANGE"}))
            else:
                log.error("unexpected error in %s", error.path, exc_info=original)
                masked = self.anonymise_error(error)
                masked.extensions = {"code": "INTERNAL"}
                processed.append(masked)
        return processed
