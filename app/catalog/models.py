"""What is sold: mall products, stores with their online goods and cashier."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.enums import ProductSource


class Store(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=128)
    owner = fields.ForeignKeyField(
        "models.User", related_name="owned_stores", null=True, on_delete=fields.RESTRICT
    )
    referrer = fields.ForeignKeyField(
        "models.User", related_name="referred_stores", null=True, on_delete=fields.RESTRICT
    )
    # 抽成: the platform's commission on the store's turnover (the union scheme's profit, §17).
    commission_rate_bp = fields.IntField(default=0)
    discount_bp = fields.IntField(default=0)
    # Rebate rules of the store's goods and of its cashier, validated by app.rebate.settings.
    goods_rebate = fields.JSONField(default=dict)
    cashier_rebate = fields.JSONField(default=dict)
    cashier_qr_scene = fields.CharField(max_length=32, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "store"


class Product(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=128)
    price_fen = fields.BigIntField()
    cost_fen = fields.BigIntField(null=True)
    supply_price_fen = fields.BigIntField(null=True)
    source = fields.CharEnumField(ProductSource, max_length=16, default=ProductSource.SELF_OPERATED)
    store = fields.ForeignKeyField(
        "models.Store", related_name="products", null=True, on_delete=fields.RESTRICT
    )
    listed = fields.BooleanField(default=True)
    rebate = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "product"
