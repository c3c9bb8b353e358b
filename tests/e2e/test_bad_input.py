"""Bad input gets a clear error, changes nothing and loses nothing."""

from __future__ import annotations

import pytest

from tests.support.client import buy, create_product

SETTINGS = "{ rebateSettings { extractionRatioBp defaultRewardRatioBp lottery { mode } paused } }"
UPDATE = "mutation($input: RebateSettingsInput!) { updateRebateSettings(input: $input) { paused } }"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"extractionRatioBp": 100001}, "extractionRatioBp"),
        ({"extractionRatioBp": -1}, "extractionRatioBp"),
        ({"defaultRewardRatioBp": 200000}, "defaultRewardRatioBp"),
        ({"lottery": {"mode": "RANGE", "minBp": 500, "maxBp": 100}}, "lottery"),
        ({"lottery": {"mode": "FIXED", "ratiosBp": []}}, "lottery"),
        ({"lottery": {"mode": "FIXED", "ratiosBp": [1000], "weights": [1, 2]}}, "lottery"),
        ({"reset": {"enabled": True, "schedule": "WEEKLY"}}, "reset"),
        ({"reset": {"enabled": True, "schedule": "DAILY", "time": "24:00"}}, "reset"),
        ({"randomReturn": {"enabled": True, "cashSeats": 0, "pointsSeats": 0}}, "randomReturn"),
        ({"displayName": ""}, "displayName"),
        ({"paused": True, "extractionRatioBp": 100001}, "extractionRatioBp"),
    ],
)
async def test_settings_out_of_range_change_nothing(admin, change, field):
    before = await admin(SETTINGS)
    error = await admin.error(UPDATE, input=change)
    assert error.code == "BAD_USER_INPUT"
    assert field in error.errors[0]["message"]
    assert await admin(SETTINGS) == before


async def test_settings_update_keeps_what_was_omitted(admin):
    await admin(
        UPDATE,
        input={"extractionRatioBp": 5000, "lottery": {"mode": "FIXED", "ratiosBp": [1000, 2000]}},
    )
    await admin(UPDATE, input={"defaultRewardRatioBp": 12000})
    settings = (await admin(SETTINGS))["rebateSettings"]
    assert settings == {
        "extractionRatioBp": 5000,
        "defaultRewardRatioBp": 12000,
        "lottery": {"mode": "FIXED"},
        "paused": False,
    }
    await admin(UPDATE, input={"lottery": None})
    assert (await admin(SETTINGS))["rebateSettings"]["lottery"] is None


PRODUCT = """mutation($input: ProductInput!) { upsertProduct(input: $input) {
  id name priceFen rebate { enabled extractionRatioBp ratioBp } } }"""


@pytest.mark.parametrize(
    "product, code",
    [
        ({"name": "p", "priceFen": 0}, "BAD_USER_INPUT"),
        ({"name": "p", "priceFen": -5}, "BAD_USER_INPUT"),
        ({"name": "", "priceFen": 100}, "BAD_USER_INPUT"),
        ({"priceFen": 100}, "BAD_USER_INPUT"),
        ({"name": "p"}, "BAD_USER_INPUT"),
        ({"name": "p", "priceFen": 100, "rebate": {"extractionRatioBp": 100001}}, "BAD_USER_INPUT"),
        ({"name": "p", "priceFen": 100, "rebate": {"ratioBp": -1}}, "BAD_USER_INPUT"),
        ({"name": "p", "priceFen": 100, "storeId": "12345"}, "NOT_FOUND"),
        ({"id": "12345", "name": "p"}, "NOT_FOUND"),
        ({"name": "p", "priceFen": 100, "source": "STORE"}, "BAD_USER_INPUT"),
    ],
)
async def test_bad_products_are_refused(admin, product, code):
    error = await admin.error(PRODUCT, input=product)
    assert error.code == code
    assert (await admin("{ products { items { id } } }"))["products"]["items"] == []


async def test_product_update_merges_its_rule(admin):
    created = (
        await admin(PRODUCT, input={"name": "p", "priceFen": 100, "rebate": {"ratioBp": 15000}})
    )["upsertProduct"]
    assert created["rebate"] == {"enabled": True, "extractionRatioBp": None, "ratioBp": 15000}
    updated = (
        await admin(PRODUCT, input={"id": created["id"], "rebate": {"extractionRatioBp": 7000}})
    )["upsertProduct"]
    assert updated["rebate"] == {"enabled": True, "extractionRatioBp": 7000, "ratioBp": 15000}
    assert updated["priceFen"] == 100
    cleared = (await admin(PRODUCT, input={"id": created["id"], "rebate": {"ratioBp": None}}))[
        "upsertProduct"
    ]
    assert cleared["rebate"]["ratioBp"] is None


ORDER = "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }"


@pytest.mark.parametrize(
    "lines, code",
    [
        ([], "BAD_USER_INPUT"),
        ([{"productId": "PRODUCT", "quantity": 0}], "BAD_USER_INPUT"),
        ([{"productId": "PRODUCT", "quantity": -1}], "BAD_USER_INPUT"),
        ([{"productId": "PRODUCT", "quantity": 100000}], "BAD_USER_INPUT"),
        ([{"productId": "999999", "quantity": 1}], "NOT_FOUND"),
        ([{"productId": "x", "quantity": 1}], "BAD_USER_INPUT"),
    ],
)
async def test_bad_orders_are_refused(anonymous, admin, lines, code):
    product = await create_product(admin, "礼盒", 100)
    buyer = await anonymous.login("x")
    lines = [
        {**line, "productId": product if line["productId"] == "PRODUCT" else line["productId"]}
        for line in lines
    ]
    error = await buyer.error(ORDER, input={"lines": lines})
    assert error.code == code
    assert (await buyer("{ myOrders { items { id } } }"))["myOrders"]["items"] == []


async def test_using_points_the_wallet_does_not_hold_is_bad_input(anonymous, admin):
    product = await create_product(admin, "礼盒", 100)
    buyer = await anonymous.login("x")
    error = await buyer.error(
        ORDER, input={"lines": [{"productId": product, "quantity": 1}], "pointsToUse": 10}
    )
    assert error.code == "BAD_USER_INPUT"
    assert "points" in error.errors[0]["message"]


async def test_an_unlisted_product_cannot_be_bought(anonymous, admin):
    product = await create_product(admin, "礼盒", 100)
    await admin(PRODUCT, input={"id": product, "listed": False})
    buyer = await anonymous.login("x")
    error = await buyer.error(ORDER, input={"lines": [{"productId": product, "quantity": 1}]})
    assert error.code == "BAD_USER_INPUT"
    assert (await buyer("{ products { items { id } } }"))["products"]["items"] == []


async def test_completing_twice_is_a_conflict(anonymous, admin):
    from tests.support.client import pay_and_settle

    product = await create_product(admin, "礼盒", 100)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    complete = "mutation($id: ID!) { completeOrder(orderId: $id) { status } }"
    assert (await admin.error(complete, id=order["id"])).code == "CONFLICT"
    await pay_and_settle(buyer, order)
    assert (await admin(complete, id=order["id"]))["completeOrder"]["status"] == "COMPLETED"
    assert (await admin.error(complete, id=order["id"])).code == "CONFLICT"
    assert (await buyer.error(complete, id=order["id"])).code == "FORBIDDEN"
