"""Our own signed, expiring session tokens; WeChat's session key never leaves the server."""

from __future__ import annotations

import hmac
import time
from datetime import UTC, datetime, timedelta

import jwt

from app.errors import Unauthenticated

TOKEN_LIFETIME = timedelta(days=7)
_ALGORITHM = "HS256"


def issue_token(user_id: int, secret_key: str, *, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {"sub": str(user_id), "iat": issued, "exp": issued + TOKEN_LIFETIME, "typ": "user"}
    return jwt.encode(claims, secret_key, algorithm=_ALGORITHM)


# Tokens whose signature was verified: (secret, token) → (user id, expiry as a POSIX time). A
# screen polled by a consumer sends the same token again and again; its signature cannot become
# wrong, only its time can run out, and that is checked at every use. Only valid tokens enter,
# and the oldest leave first.
_VERIFIED_MAX = 10_000
_verified: dict[tuple[str, str], tuple[int, float]] = {}


def read_token(token: str, secret_key: str) -> int:
    known = _verified.get((secret_key, token))
    if known is not None:
        if time.time() < known[1]:
            return known[0]
        del _verified[(secret_key, token)]
        raise Unauthenticated("the session token has expired; log in again")
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
        user_id = int(claims["sub"])
    except (KeyError, ValueError):
        raise Unauthenticated("the session token is not valid") from None
    while len(_verified) >= _VERIFIED_MAX:
        del _verified[next(iter(_verified))]
    _verified[(secret_key, token)] = (user_id, float(claims["exp"]))
    return user_id


def is_admin_token(token: str, admin_token: str) -> bool:
    return hmac.compare_digest(token.encode(), admin_token.encode())
