"""Our own signed, expiring session tokens; WeChat's session key never leaves the server."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta

import jwt

from app.errors import Unauthenticated

TOKEN_LIFETIME = timedelta(days=7)
_ALGORITHM = "HS256"


def issue_token(user_id: int, secret_key: str, *, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {"sub": str(user_id), "iat": issued, "exp": issued + TOKEN_LIFETIME, "typ": "user"}
    return jwt.encode(claims, secret_key, algorithm=_ALGORITHM)


def read_token(token: str, secret_key: str) -> int:
    try:
        claims = jwt.decode(
            token, secret_key, algorithms=[_ALGORITHM], options={"require": ["exp"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the session token has expired; log in again") from None
    except jwt.PyJWTError:
        raise Unauthenticated("the session token is not valid") from None
    if claims.get("typ") != "user":
        raise Unauthenticated("the session token is not valid")
    try:
        return int(claims["sub"])
    except (KeyError, ValueError):
        raise Unauthenticated("the session token is not valid") from None


def is_admin_token(token: str, admin_token: str) -> bool:
    return hmac.compare_digest(token.encode(), admin_token.encode())
