"""Products and stores: validated upserts and the rebate rules they carry."""

from __future__ import annotations

import secrets
from typing import Any

from tortoise.transactions import in_transaction

from app.catalog.models import Product, Store
from app.enums import ProductSource
from app.errors import BadInput, NotFound
from app.ids import parse_id
from app.money import BP_SCALE
from app.rebate.settings import RebateRule, load_rebate_settings, merge_patch, validated

_MAX_PRICE_FEN = 10**11  # a billion yuan: anything above is a typo, not a product


def product_rule(product: Product) -> RebateRule:
    return RebateRule.model_validate(product.rebate or {})


def store_goods_rule(store: Store) -> RebateRule:
    return RebateRule.model_validate(store.goods_rebate or {})


def store_cashier_rule(store: Store) -> RebateRule:
    return RebateRule.model_validate(store.cashier_rebate or {})


def _check_money(name: str, value: Any, *, allow_zero: bool) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadInput(f"{name} must be an integer number of fen", field=name)
    if value < 0 or (value == 0 and not allow_zero) or value > _MAX_PRICE_FEN:
        raise BadInput(f"{name} is out of range", field=name)


async def upsert_product(data: dict[str, Any]) -> Product:
    """Create (no id) or update a product; omitted fields keep their value."""
    async with in_transaction() as conn:
        product_id = data.get("id")
        if product_id is None:
            product = None
            if not data.get("name"):
                raise BadInput("name is required for a new product", field="name")
            if data.get("price_fen") is None:
                raise BadInput("priceFen is required for a new product", field="priceFen")
        else:
            product = (
                await Product.filter(id=parse_id(product_id, "id"))
                .using_db(conn)
                .select_for_update()
                .first()
            )
            if product is None:
                raise NotFound(f"product {product_id} not found")
        for field in ("price_fen", "cost_fen", "supply_price_fen"):
            if field in data:
                if field == "price_fen" and data[field] is None:
                    raise BadInput("priceFen cannot be null", field="priceFen")
                _check_money(
                    field.replace("_fen", "Fen"), data[field], allow_zero=field != "price_fen"
                )
        if "name" in data and (not data["name"] or len(data["name"]) > 128):
            raise BadInput("name must be 1 to 128 characters", field="name")
        store_id = data.get("store_id", product.store_id if product else None)
        if store_id is not None:
            store_id = parse_id(store_id, "storeId")
            if not await Store.filter(id=store_id).using_db(conn).exists():
                raise NotFound(f"store {store_id} not found")
        source = data.get("source") or (product.source if product else None)
        if source is None:
            source = ProductSource.STORE if store_id is not None else ProductSource.SELF_OPERATED
        if (source == ProductSource.STORE) != (store_id is not None):
            raise BadInput("a STORE product needs a storeId, and only it", field="source")
        current_rule = product_rule(product) if product else None
        if current_rule is None:
            plugin = await load_rebate_settings(conn)
            current_rule = RebateRule(enabled=plugin.new_products_enabled_by_default)
        rule = current_rule
        if data.get("rebate") is not None:
            rule = validated(RebateRule, merge_patch(current_rule, data["rebate"]), "rebate")
        fields = {
            "name": data.get("name", product.name if product else None),
            "price_fen": data.get("price_fen", product.price_fen if product else None),
            "cost_fen": data.get("cost_fen", product.cost_fen if product else None),
            "supply_price_fen": data.get(
                "supply_price_fen", product.supply_price_fen if product else None
            ),
            "source": source,
            "store_id": store_id,
            "listed": data.get("listed", product.listed if product else True),
            "rebate": rule.model_dump(mode="json"),
        }
        if fields["listed"] is None:
            raise BadInput("listed cannot be null", field="listed")
        if product is None:
            return await Product.create(**fields, using_db=conn)
        for name, value in fields.items():
            setattr(product, name, value)
        await product.save(using_db=conn)
        return product


async def create_store(
    name: str, *, owner_id: int | None = None, commission_rate_bp: int = 0
) -> Store:
    return await Store.create(
        name=name,
        owner_id=owner_id,
        commission_rate_bp=commission_rate_bp,
        cashier_qr_scene=f"cashier_{secrets.token_hex(6)}",
    )


async def get_product(product_id: Any) -> Product:
    product = await Product.filter(id=parse_id(product_id, "id")).first()
    if product is None:
        raise NotFound(f"product {product_id} not found")
    return product


async def list_products(
    *, store_id: Any = None, listed_only: bool, after_id: int | None, limit: int
) -> list[Product]:
    query = Product.all()
    query = (
        query.filter(store_id=parse_id(store_id, "storeId"))
        if store_id is not None
        else query.filter(store_id__isnull=True)
    )
    if listed_only:
        query = query.filter(listed=True)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    return await query.order_by("id").limit(limit)


async def upsert_store(data: dict[str, Any]) -> Store:
    """Create (no id) or update a store with its goods and cashier rules."""
    from app.members.models import User

    async with in_transaction() as conn:
        store_id = data.get("id")
        store = None
        if store_id is not None:
            store = (
                await Store.filter(id=parse_id(store_id, "id"))
                .using_db(conn)
                .select_for_update()
                .first()
            )
            if store is None:
                raise NotFound(f"store {store_id} not found")
        elif not data.get("name"):
            raise BadInput("name is required for a new store", field="name")
        if "name" in data and (not data["name"] or len(data["name"]) > 128):
            raise BadInput("name must be 1 to 128 characters", field="name")
        owner_id = data.get("owner_id", store.owner_id if store else None)
        if owner_id is not None:
            owner_id = parse_id(owner_id, "ownerId")
            if not await User.filter(id=owner_id).using_db(conn).exists():
                raise NotFound(f"user {owner_id} not found", field="ownerId")
        rate = data.get("commission_rate_bp", store.commission_rate_bp if store else 0)
        if not isinstance(rate, int) or isinstance(rate, bool) or not 0 <= rate <= BP_SCALE:
            raise BadInput("commissionRateBp must be between 0 and 10000", field="commissionRateBp")
        goods = store_goods_rule(store) if store else RebateRule()
        cashier = store_cashier_rule(store) if store else RebateRule()
        if data.get("goods_rebate") is not None:
            goods = validated(RebateRule, merge_patch(goods, data["goods_rebate"]), "goodsRebate")
        if data.get("cashier_rebate") is not None:
            cashier = validated(
                RebateRule, merge_patch(cashier, data["cashier_rebate"]), "cashierRebate"
            )
        fields = {
            "name": data.get("name", store.name if store else None),
            "owner_id": owner_id,
            "commission_rate_bp": rate,
            "goods_rebate": goods.model_dump(mode="json"),
            "cashier_rebate": cashier.model_dump(mode="json"),
        }
        if store is None:
            return await Store.create(
                **fields, cashier_qr_scene=f"cashier_{secrets.token_hex(6)}", using_db=conn
            )
        for name, value in fields.items():
            setattr(store, name, value)
        await store.save(using_db=conn)
        return store


async def get_store(store_id: Any) -> Store:
    store = await Store.filter(id=parse_id(store_id, "id")).first()
    if store is None:
        raise NotFound(f"store {store_id} not found")
    return store


async def enable_rebate_for_all_products() -> int:
    """一键启用: switch the rebate on for every product that has it off; returns how many."""
    changed = 0
    async with in_transaction() as conn:
        for product in await Product.all().using_db(conn).select_for_update():
            rule = product_rule(product)
            if not rule.enabled:
                rule.enabled = True
                product.rebate = rule.model_dump(mode="json")
                await product.save(update_fields=["rebate"], using_db=conn)
                changed += 1
    return changed
