"""Users of the mini-program, their levels and their server-side WeChat sessions."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class MemberLevel(Model):
    """会员等级: ratio rules are keyed by it (SPEC §5)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64)
    rank = fields.IntField(default=0)

    class Meta:
        table = "member_level"


class TeamLevel(Model):
    """团队等级 with its level-difference rate, shareholders share the daily dividend (SPEC §14)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64)
    rate_bp = fields.IntField(default=0)
    shareholder = fields.BooleanField(default=False)

    class Meta:
        table = "team_level"


class User(Model):
    id = fields.IntField(primary_key=True)
    openid = fields.CharField(max_length=128, unique=True)
    unionid = fields.CharField(max_length=128, null=True)
    nickname = fields.CharField(max_length=64, null=True)
    avatar_url = fields.CharField(max_length=512, null=True)
    referrer_code = fields.CharField(max_length=16, unique=True)
    referrer: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="referees", null=True, on_delete=fields.RESTRICT
    )
    member_level: fields.ForeignKeyNullableRelation[MemberLevel] = fields.ForeignKeyField(
        "models.MemberLevel", related_name="users", null=True, on_delete=fields.SET_NULL
    )
    team_level: fields.ForeignKeyNullableRelation[TeamLevel] = fields.ForeignKeyField(
        "models.TeamLevel", related_name="users", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "app_user"


class WechatSession(Model):
    """The session key from jscode2session: kept here, never returned by any API."""

    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="wechat_session", primary_key=True, on_delete=fields.CASCADE
    )
    session_key = fields.CharField(max_length=128)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "wechat_session"
