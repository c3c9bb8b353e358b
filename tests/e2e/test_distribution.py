"""Distribution rewards through the API (SPEC §14): a referral chain, its commissions, the team."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.distribution.service import release_due
from tests.support.client import buy, create_product, pay_and_settle

SETTINGS = """mutation($input: DistributionSettingsInput!) {
  updateDistributionSettings(input: $input) {
    directRateBp indirectRateBp maxCommissionDepth commissionFreezeDays
    teamLevels { name rateBp } } }"""
COMMISSIONS = "{ myCommissions { items { kind status amountFen fromUserId orderId } } }"
WALLET = "{ wallet { balanceFen pendingCommissionFen } }"


async def test_a_chain_of_referrers_earns_its_commissions(anonymous, admin):
    updated = (
        await admin(
            SETTINGS,
            input={
                "directRateBp": 1000,
                "indirectRateBp": 500,
                "commissionFreezeDays": 0,
                "teamLevels": [{"name": "金牌", "rateBp": 300, "shareholder": False}],
            },
        )
    )["updateDistributionSettings"]
    assert updated["maxCommissionDepth"] == 2
    assert updated["teamLevels"] == [{"name": "金牌", "rateBp": 300}]
    top = await anonymous.login("top")
    top_code = (await top("{ me { referrerCode } }"))["me"]["referrerCode"]
    middle = await anonymous.login("middle", referrer_code=top_code)
    middle_code = (await middle("{ me { referrerCode } }"))["me"]["referrerCode"]
    buyer = await anonymous.login("buyer", referrer_code=middle_code)
    team = (await middle("{ myTeam { items { id } } }"))["myTeam"]["items"]
    assert team == [{"id": buyer.user_id}]

    product = await create_product(admin, "礼盒", 16800)
    order = await pay_and_settle(buyer, await buy(buyer, product))
    # Direct: 16800 × 10% = 1680 to the middle; indirect: 16800 × 5% = 840 to the top.
    assert (await middle(COMMISSIONS))["myCommissions"]["items"] == [
        {
            "kind": "DIRECT",
            "status": "PENDING",
            "amountFen": 1680,
            "fromUserId": buyer.user_id,
            "orderId": order["id"],
        }
    ]
    assert (await top(COMMISSIONS))["myCommissions"]["items"][0]["amountFen"] == 840
    assert (await middle(WALLET))["wallet"] == {"balanceFen": 0, "pendingCommissionFen": 1680}

    # Available once the order completes (plus 0 freeze days), moved to the balance by the timer.
    await admin("mutation($id: ID!) { completeOrder(orderId: $id) { status } }", id=order["id"])
    assert await release_due(datetime.now(UTC) + timedelta(seconds=1)) == 2
    assert (await middle(WALLET))["wallet"] == {"balanceFen": 1680, "pendingCommissionFen": 0}
    assert (await middle(COMMISSIONS))["myCommissions"]["items"][0]["status"] == "AVAILABLE"


async def test_a_refund_cancels_pending_commissions(anonymous, admin):
    await admin(SETTINGS, input={"directRateBp": 1000})
    referrer = await anonymous.login("ref")
    code = (await referrer("{ me { referrerCode } }"))["me"]["referrerCode"]
    buyer = await anonymous.login("buyer", referrer_code=code)
    product = await create_product(admin, "礼盒", 1000)
    order = await pay_and_settle(buyer, await buy(buyer, product))
    await admin("mutation($id: ID!) { refundOrder(orderId: $id) { status } }", id=order["id"])
    [commission] = (await referrer(COMMISSIONS))["myCommissions"]["items"]
    assert (commission["status"], commission["amountFen"]) == ("CANCELLED", 100)
    assert (await referrer(WALLET))["wallet"] == {"balanceFen": 0, "pendingCommissionFen": 0}


async def test_distribution_settings_are_validated(admin, anonymous):
    error = await admin.error(SETTINGS, input={"maxCommissionDepth": 4})
    assert error.code == "BAD_USER_INPUT"
    assert "maxCommissionDepth" in error.errors[0]["message"]
    consumer = await anonymous.login("x")
    assert (await consumer.error("{ distributionSettings { directRateBp } }")).code == "FORBIDDEN"
