"""Demo data for the embedded default: the article's products, a store, and a few buyers."""

from __future__ import annotations

from app.catalog.models import Product, Store
from app.catalog.service import create_store, upsert_product
from app.members.models import User
from app.members.service import new_referrer_code

DEMO_PRODUCTS = [
    ("精选礼盒 (the article's 168.00 example)", 16800),
    ("有机大米 5kg", 6800),
    ("茶具套装", 29900),
]
# Logging in to the fake WeChat with code "alice" gives openid "mock-openid-alice".
DEMO_USERS = ["alice", "bob", "carol", "dave"]


async def load_demo() -> bool:
    """Load the demo once; False when the database already holds products."""
    if await Product.exists():
        return False
    for name, price in DEMO_PRODUCTS:
        await upsert_product({"name": name, "price_fen": price, "rebate": {"enabled": True}})
    if not await Store.exists():
        store = await create_store("示例门店 Demo Store", commission_rate_bp=1000)
        await upsert_product(
            {
                "name": "门店套餐",
                "price_fen": 9900,
                "store_id": store.id,
                "rebate": {"enabled": True},
            }
        )
    for code in DEMO_USERS:
        if not await User.filter(openid=f"mock-openid-{code}").exists():
            await User.create(
                openid=f"mock-openid-{code}",
                nickname=code.title(),
                referrer_code=new_referrer_code(),
            )
    return True
