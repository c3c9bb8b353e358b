"""Login and user lookups."""

from __future__ import annotations

import secrets
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.errors import BadInput, NotFound
from app.ids import parse_id
from app.members.models import MemberLevel, TeamLevel, User, WechatSession

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: people type these


def new_referrer_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))


def _code_of(scanned: str) -> str:
    """A referrer code as typed, shared in a link, or scanned from a code's scene (r=… / m=…)."""
    _, _, value = scanned.strip().rpartition("=")
    return value.upper()


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
                            await User.filter(referrer_code=_code_of(referrer_code))
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


async def upsert_member_level(data: dict[str, Any]) -> MemberLevel:
    name = data.get("name")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 64:
        raise BadInput("name must be 1 to 64 characters", field="name")
    rank = data.get("rank")
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank <= 1000:
        raise BadInput("rank must be between 0 and 1000", field="rank")
    if data.get("id") is None:
        return await MemberLevel.create(name=name.strip(), rank=rank)
    level = await MemberLevel.filter(id=parse_id(data["id"], "id")).first()
    if level is None:
        raise NotFound(f"member level {data['id']} not found")
    level.name, level.rank = name.strip(), rank
    await level.save()
    return level


async def set_user_levels(user_id: Any, changes: dict[str, Any]) -> User:
    """Set or clear (explicit None) a user's member and team level; omitted keys stay."""
    user = await User.filter(id=parse_id(user_id, "userId")).first()
    if user is None:
        raise NotFound(f"user {user_id} not found")
    for key, model, name in (
        ("member_level_id", MemberLevel, "memberLevelId"),
        ("team_level_id", TeamLevel, "teamLevelId"),
    ):
        if key not in changes:
            continue
        value = changes[key]
        if value is not None:
            value = parse_id(value, name)
            if not await model.filter(id=value).exists():
                raise NotFound(f"{name.removesuffix('Id')} {value} not found", field=name)
        setattr(user, key, value)
    await user.save(update_fields=["member_level_id", "team_level_id"])
    return user
