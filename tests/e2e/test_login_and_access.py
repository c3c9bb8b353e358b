"""Login through the fake WeChat, our own tokens, and who may call what."""

from __future__ import annotations

import json

from tests.support.client import Api, buy, create_product


async def test_login_with_a_fake_code_gives_a_token_and_the_same_user(anonymous):
    body = await anonymous.raw(
        """mutation { login(code: "alice", nickname: "Alice") {
             token user { id nickname referrerCode referrerId } } }"""
    )
    assert "errors" not in body
    payload = body["data"]["login"]
    assert payload["user"]["nickname"] == "Alice"
    assert len(payload["user"]["referrerCode"]) == 8
    assert payload["user"]["referrerId"] is None
    assert "session" not in json.dumps(body).lower()
    me = Api(anonymous.http, payload["token"])
    assert (await me("{ me { id nickname } }"))["me"] == {
        "id": payload["user"]["id"],
        "nickname": "Alice",
    }
    again = await anonymous.login("alice")
    assert again.user_id == payload["user"]["id"]


async def test_login_binds_a_new_user_to_a_referrer(anonymous):
    referrer = await anonymous.login("ref")
    code = (await referrer("{ me { referrerCode } }"))["me"]["referrerCode"]
    referee = await anonymous.login("newbie", referrer_code=code)
    assert (await referee("{ me { referrerId } }"))["me"]["referrerId"] == referrer.user_id


async def test_an_invalid_code_is_bad_input(anonymous):
    error = await anonymous.error('mutation { login(code: "invalid-code") { token } }')
    assert error.code == "BAD_USER_INPUT"
    error = await anonymous.error('mutation { login(code: "") { token } }')
    assert error.code == "BAD_USER_INPUT"


async def test_tokens_are_checked(anonymous, http):
    assert (await anonymous.error("{ me { id } }")).code == "UNAUTHENTICATED"
    forged = Api(http, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.forged")
    assert (await forged.error("{ me { id } }")).code == "UNAUTHENTICATED"
    response = await http.post(
        "graphql", json={"query": "{ me { id } }"}, headers={"Authorization": "Basic abc"}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_operator_only_operations(anonymous, admin):
    consumer = await anonymous.login("x")
    for query in (
        "{ rebateSettings { enabled } }",
        'mutation { upsertProduct(input: {name: "p", priceFen: 1}) { id } }',
        "mutation { updateRebateSettings(input: {paused: true}) { paused } }",
        "{ audit { ok } }",
    ):
        assert (await consumer.error(query)).code == "FORBIDDEN"
        assert (await anonymous.error(query)).code == "UNAUTHENTICATED"
    assert (await admin("{ rebateSettings { paused } }"))["rebateSettings"]["paused"] is False
    assert (await admin.error("{ me { id } }")).code == "FORBIDDEN"


async def test_a_consumer_sees_only_their_own_orders_and_entries(anonymous, admin):
    product = await create_product(admin, "礼盒", 100)
    owner = await anonymous.login("owner")
    other = await anonymous.login("other")
    order = await buy(owner, product)
    query = "query($id: ID!) { order(id: $id) { id } }"
    assert (await owner(query, id=order["id"]))["order"]["id"] == order["id"]
    assert (await admin(query, id=order["id"]))["order"]["id"] == order["id"]
    assert (await other.error(query, id=order["id"])).code == "NOT_FOUND"
    assert (await anonymous.error(query, id=order["id"])).code == "UNAUTHENTICATED"
    assert (await owner.error(query, id="999999")).code == "NOT_FOUND"
    assert (await owner.error(query, id="abc")).code == "BAD_USER_INPUT"


async def test_oversized_queries_are_refused(anonymous):
    consumer = await anonymous.login("x")
    nested = "{ myEntries { items { process { items { amountFen } } } } }"
    assert "errors" not in await consumer.raw(nested)
    many_aliases = (
        "{ " + " ".join(f"a{i}: rebateDisplay {{ displayName }}" for i in range(40)) + " }"
    )
    body = await consumer.raw(many_aliases)
    assert "aliases" in body["errors"][0]["message"]
    huge = "{ " + " ".join("rebateDisplay { displayName }" for _ in range(800)) + " }"
    body = await consumer.raw(huge)
    assert "token" in body["errors"][0]["message"].lower()


async def test_healthz(http):
    response = await http.get("healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["database"] == "ok"


async def test_batched_array_requests_are_refused(http):
    response = await http.post("graphql", json=[{"query": "{ rebateDisplay { displayName } }"}] * 2)
    assert response.status_code == 400
