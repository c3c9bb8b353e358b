"""Login and user lookups."""

from __future__ import annotations

import secrets

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.errors import NotFound
from app.members.models import User, WechatSession

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: people type these


def new_referrer_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))


async def login_with_openid(
    openid: str,
    session_key: str,
    *,
    unionid: str | None = None,
    nickname: str | None = None,
    avatar_url: str | None = None,
    referrer_code: str | None = None,
) -> User:
    """Find or create the user of `openid`; a new user is bound to a valid referrer for good."""
    for _ in range(5):
        try:
            async with in_transaction() as conn:
                user = await User.filter(openid=openid).using_db(conn).first()
                if user is None:
                    referrer = None
                    if referrer_code:
                        referrer = (
                            await User.filter(referrer_code=referrer_code.upper())
                            .using_db(conn)
                            .first()
                        )
                    user = await User.create(
                        openid=openid,
                        unionid=unionid,
                        nickname=nickname,
                        avatar_url=avatar_url,
                        referrer_code=new_referrer_code(),
                        referrer_id=referrer.id if referrer else None,
                        using_db=conn,
                    )
                else:
                    changed = []
                    for name, value in (("nickname", nickname), ("avatar_url", avatar_url)):
                        if value is not None and getattr(user, name) != value:
                            setattr(user, name, value)
                            changed.append(name)
                    if changed:
                        await user.save(update_fields=changed, using_db=conn)
                stored = (
                    await WechatSession.filter(user_id=user.id)
                    .using_db(conn)
                    .update(session_key=session_key)
                )
                if not stored:
                    await WechatSession.create(
                        user_id=user.id, session_key=session_key, using_db=conn
                    )
                return user
        except IntegrityError:
            # Two first logins of one openid raced, or a referrer code collided: try again.
            continue
    raise RuntimeError("could not create the user")


async def get_user(user_id: int) -> User:
    user = await User.filter(id=user_id).first()
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user
