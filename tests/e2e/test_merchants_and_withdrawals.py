"""Merchant onboarding (SPEC §15) and withdrawals (§16) through the API and the fake WeChat."""

from __future__ import annotations

from tests.support.client import APPLICATION, buy, create_product, pay_and_settle

APPLY = """mutation($input: MerchantApplicationInput!) { applyMerchant(input: $input) {
  id status storeName applicantId referrerId rejectReason storeId } }"""
REVIEW = """mutation($id: ID!, $approve: Boolean!, $rate: Int, $reason: String) {
  reviewMerchantApplication(id: $id, approve: $approve, commissionRateBp: $rate,
    rejectReason: $reason) { id status storeId rejectReason } }"""


async def test_a_merchant_is_onboarded_by_a_referrers_code(anonymous, admin):
    referrer = await anonymous.login("ref")
    code = (await referrer("mutation { merchantInviteQrCode { scene } }"))["merchantInviteQrCode"]
    merchant = await anonymous.login("shop")
    bad = await merchant.error(APPLY, input={**APPLICATION, "phone": "12345"})
    assert (bad.code, bad.errors[0]["extensions"]["field"]) == ("BAD_USER_INPUT", "phone")
    applied = (await merchant(APPLY, input={**APPLICATION, "referrerCode": code["scene"]}))[
        "applyMerchant"
    ]
    assert applied["status"] == "PENDING"
    assert applied["referrerId"] == referrer.user_id
    pending = await admin("{ merchantApplications(status: PENDING) { items { id } } }")
    assert pending["merchantApplications"]["items"] == [{"id": applied["id"]}]
    assert (
        await merchant.error(REVIEW, id=applied["id"], approve=True, rate=500)
    ).code == "FORBIDDEN"
    assert (await admin.error(REVIEW, id=applied["id"], approve=True)).code == "BAD_USER_INPUT"
    approved = (await admin(REVIEW, id=applied["id"], approve=True, rate=500))[
        "reviewMerchantApplication"
    ]
    assert approved["status"] == "APPROVED"
    [store] = (await merchant("{ myStores { id name ownerId referrerId commissionRateBp } }"))[
        "myStores"
    ]
    assert store == {
        "id": approved["storeId"],
        "name": "街角咖啡",
        "ownerId": merchant.user_id,
        "referrerId": referrer.user_id,
        "commissionRateBp": 500,
    }
    assert (
        await admin.error(REVIEW, id=applied["id"], approve=False, reason="x")
    ).code == "CONFLICT"


async def test_a_rejected_application_says_why(anonymous, admin):
    merchant = await anonymous.login("shop")
    applied = (await merchant(APPLY, input=APPLICATION))["applyMerchant"]
    rejected = (await admin(REVIEW, id=applied["id"], approve=False, reason="执照模糊"))[
        "reviewMerchantApplication"
    ]
    assert (rejected["status"], rejected["rejectReason"], rejected["storeId"]) == (
        "REJECTED",
        "执照模糊",
        None,
    )
    mine = await merchant("{ myMerchantApplications { status rejectReason } }")
    assert mine["myMerchantApplications"] == [{"status": "REJECTED", "rejectReason": "执照模糊"}]
    assert (await merchant("{ myStores { id } }"))["myStores"] == []


async def test_payouts_are_withdrawn_to_wechat_change(server, anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    a, b, c = [await anonymous.login(code) for code in "abc"]
    for buyer in (a, b, c):
        await pay_and_settle(buyer, await buy(buyer, product))
    wallet = "{ wallet { balanceFen } }"
    assert (await a(wallet))["wallet"]["balanceFen"] == 21840
    request = (
        "mutation($fen: Int!) { requestWithdrawal(amountFen: $fen) { id amountFen feeFen status } }"
    )
    assert (await a.error(request, fen=50)).code == "BAD_USER_INPUT"  # below the 100 minimum
    assert (await a.error(request, fen=30000)).code == "BAD_USER_INPUT"  # more than the balance
    withdrawal = (await a(request, fen=20000))["requestWithdrawal"]
    assert (withdrawal["amountFen"], withdrawal["feeFen"], withdrawal["status"]) == (
        20000,
        0,
        "PENDING",
    )
    assert (await a(wallet))["wallet"]["balanceFen"] == 1840  # held from the request on
    review = (
        "mutation($id: ID!, $ok: Boolean!) { reviewWithdrawal(id: $id, approve: $ok) { status } }"
    )
    assert (await a.error(review, id=withdrawal["id"], ok=True)).code == "FORBIDDEN"
    assert (await admin(review, id=withdrawal["id"], ok=True))["reviewWithdrawal"][
        "status"
    ] == "PAID"
    assert (await admin.error(review, id=withdrawal["id"], ok=False)).code == "CONFLICT"
    mine = (await a("{ myWithdrawals { items { status amountFen } } }"))["myWithdrawals"]["items"]
    assert mine == [{"status": "PAID", "amountFen": 20000}]
    # A rejected request gives the money back.
    second = (await a(request, fen=1000))["requestWithdrawal"]
    assert (await admin(review, id=second["id"], ok=False))["reviewWithdrawal"][
        "status"
    ] == "REJECTED"
    assert (await a(wallet))["wallet"]["balanceFen"] == 1840
    pending = (await admin("{ withdrawals(status: PAID) { items { amountFen } } }"))["withdrawals"]
    assert pending["items"] == [{"amountFen": 20000}]


async def test_the_owner_sees_the_stores_orders_and_turnover(anonymous, admin):
    from tests.support.client import pay_and_settle

    merchant = await anonymous.login("shop")
    applied = (await merchant(APPLY, input=APPLICATION))["applyMerchant"]
    store_id = (await admin(REVIEW, id=applied["id"], approve=True, rate=300))[
        "reviewMerchantApplication"
    ]["storeId"]
    customer = await anonymous.login("guest")
    cashier = (
        await customer(
            "mutation($s: ID!) { createCashierOrder(input: {storeId: $s, amountFen: 2500}) "
            "{ id outTradeNo status payableFen settled lines { id productId quantity amountFen "
            "paidFen queueKey } payParams { package } } }",
            s=store_id,
        )
    )["createCashierOrder"]
    paid = await pay_and_settle(customer, cashier)
    assert paid["status"] == "COMPLETED"  # a cashier payment is complete when paid
    query = "{ myStores { turnover { orderCount paidFen } orders { items { id totalFen } } } }"
    [store] = (await merchant(query))["myStores"]
    assert store["turnover"] == {"orderCount": 1, "paidFen": 2500}
    assert store["orders"]["items"] == [{"id": cashier["id"], "totalFen": 2500}]

    # An unpaid order shows the owner its amount, never the buyer's payment handle.
    unpaid = (
        await customer(
            "mutation($s: ID!) { createCashierOrder(input: {storeId: $s, amountFen: 900}) "
            "{ id payParams { package } } }",
            s=store_id,
        )
    )["createCashierOrder"]
    assert unpaid["payParams"] is not None
    query = "{ myStores { orders { items { id totalFen payParams { package } } } } }"
    [store] = (await merchant(query))["myStores"]
    assert store["orders"]["items"][0] == {"id": unpaid["id"], "totalFen": 900, "payParams": None}
