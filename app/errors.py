"""Domain errors, each carrying the code the API reports in `extensions.code`."""

from __future__ import annotations


class DomainError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadInput(DomainError):
    code = "BAD_USER_INPUT"


class NotFound(DomainError):
    code = "NOT_FOUND"


class Conflict(DomainError):
    code = "CONFLICT"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class UpstreamError(DomainError):
    """WeChat (or another service we call) refused or failed."""

    code = "UPSTREAM"
