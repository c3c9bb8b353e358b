"""Every root field of the schema, asked by each kind of caller: who is let in and who is refused.

The rules: a consumer sees and acts on only their own orders, entries, wallet, commissions, team,
applications and withdrawals; a store's owner also their store (turnover, orders, cashier code,
completing its orders); the operator everything, but is not a consumer. Reading someone else's
order or entry, or acting on it as its buyer, answers NOT_FOUND, as a missing one does.

A test builds one small world through the API and walks every field of a root type: the queries
as all five callers in one world (they change nothing), the mutations as one caller per world,
the refused ones first, then those let in. The arguments are the same for every caller and
succeed for at least one of them, so a refusal is about who asks, never about what was asked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import graphql
import pytest

from graphql_schema.schema import build_schema
from tests.support.client import APPLICATION, Api, buy, create_product, pay_and_settle

OK = "ok"
UNAUTH = "UNAUTHENTICATED"
FORBID = "FORBIDDEN"
HIDDEN = "NOT_FOUND"

CALLERS = ("anonymous", "owner", "other", "merchant", "operator")

# Outcome rows, one per caller in CALLERS order.
PUBLIC = (OK, OK, OK, OK, OK)
MINE = (UNAUTH, OK, OK, OK, FORBID)  # the caller's own things: consumers only
OWNERS = (UNAUTH, OK, HIDDEN, HIDDEN, OK)  # the owner's order or entry by id
BUYERS = (UNAUTH, OK, HIDDEN, HIDDEN, FORBID)  # acting on the owner's order or entry
STORE = (UNAUTH, FORBID, FORBID, OK, OK)  # the merchant's store
OPERATOR = (UNAUTH, FORBID, FORBID, FORBID, OK)


@dataclass
class World:
    """The owner's data of every kind, a store of the merchant's, and who may look at them."""

    apis: dict[str, Api]
    users: dict[str, str | None]
    bystander: str = ""
    product: str = ""
    unlisted: str = ""
    level: str = ""
    store: str = ""
    mall_order: str = ""  # the owner's, PAID
    store_order: str = ""  # the owner's, PAID, at the merchant's store
    entry: str = ""  # the owner's, WAITING
    lottery_entry: str = ""  # the owner's, WAITING, may draw
    withdrawal: str = ""  # the owner's, PENDING
    application: str = ""  # the bystander's, PENDING
    owner_entries: set[str] = field(default_factory=set)
    owner_commissions: set[str] = field(default_factory=set)

    def me(self, caller: str) -> str | None:
        return self.users[caller]


async def build_world(anonymous: Api, admin: Api) -> World:
    await admin(
        "mutation { updateDistributionSettings(input: {directRateBp: 1000}) { directRateBp } }"
    )
    # A 10% ratio: one later order repays an entry, so every consumer ends up with some cash.
    product = await create_product(admin, "礼盒", 10000, ratioBp=1000)
    lottery = await create_product(
        admin,
        "福袋",
        10000,
        ratioBp=1000,
        lottery={"mode": "FIXED", "ratiosBp": [500, 1500]},
    )
    unlisted = (
        await admin(
            'mutation { upsertProduct(input: {name: "下架", priceFen: 100, listed: false, '
            "costFen: 40, supplyPriceFen: 60}) { id } }"
        )
    )["upsertProduct"]["id"]
    level = (await admin('mutation { upsertMemberLevel(input: {name: "VIP", rank: 1}) { id } }'))[
        "upsertMemberLevel"
    ]["id"]

    owner = await anonymous.login("owner")
    code = (await owner("{ me { referrerCode } }"))["me"]["referrerCode"]
    other = await anonymous.login("other", referrer_code=code)
    merchant = await anonymous.login("merchant")
    bystander = await anonymous.login("bystander")

    apply = "mutation($i: MerchantApplicationInput!) { applyMerchant(input: $i) { id } }"
    review = """mutation($id: ID!, $ok: Boolean!) {
      reviewMerchantApplication(id: $id, approve: $ok, commissionRateBp: 300, rejectReason: "否")
      { storeId } }"""
    applied = (await merchant(apply, i=APPLICATION))["applyMerchant"]["id"]
    store = (await admin(review, id=applied, ok=True))["reviewMerchantApplication"]["storeId"]
    rejected = (await owner(apply, i={**APPLICATION, "storeName": "小卖部"}))["applyMerchant"]["id"]
    await admin(review, id=rejected, ok=False)
    pending = (await bystander(apply, i={**APPLICATION, "storeName": "花店"}))["applyMerchant"]
    store_product = (
        await admin(
            """mutation($s: ID!) {
                 upsertProduct(input: {name: "咖啡豆", priceFen: 5000, storeId: $s}) { id } }""",
            s=store,
        )
    )["upsertProduct"]["id"]

    # Each order repays the entry ahead of it: owner ← other ← merchant ← owner's second order.
    mall_order = await pay_and_settle(owner, await buy(owner, product))
    await pay_and_settle(other, await buy(other, product))
    await pay_and_settle(merchant, await buy(merchant, product))
    three = await owner(
        "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id outTradeNo } }",
        input={
            "lines": [
                {"productId": product, "quantity": 1},
                {"productId": product, "quantity": 1},
                {"productId": lottery, "quantity": 1},
            ]
        },
    )
    three = await pay_and_settle(owner, three["createOrder"])
    store_order = await pay_and_settle(owner, await buy(owner, store_product))
    assert store_order["status"] == "PAID"

    entries = (await owner("{ myEntries(first: 100) { items { id orderLineId } } }"))["myEntries"]
    by_line = {e["orderLineId"]: e["id"] for e in entries["items"]}
    to_exchange, waiting, drawable = (by_line[line["id"]] for line in three["lines"])
    # Points for every consumer, to transfer on.
    await owner(
        "mutation($e: ID!) { exchangeEntry(entryId: $e, target: POINTS) { status } }", e=to_exchange
    )
    for receiver in (other, merchant):
        await owner(
            "mutation($to: ID!) { transferPoints(toUserId: $to, points: 100) { points } }",
            to=receiver.user_id,
        )
    withdrawal = (await owner("mutation { requestWithdrawal(amountFen: 200) { id } }"))[
        "requestWithdrawal"
    ]["id"]
    commissions = (await owner("{ myCommissions { items { id } } }"))["myCommissions"]["items"]
    assert commissions, "the owner earns a commission on the order of the user they referred"

    return World(
        apis={
            "anonymous": anonymous,
            "owner": owner,
            "other": other,
            "merchant": merchant,
            "operator": admin,
        },
        users={
            "anonymous": None,
            "owner": owner.user_id,
            "other": other.user_id,
            "merchant": merchant.user_id,
            "operator": None,
        },
        bystander=str(bystander.user_id),
        product=product,
        unlisted=unlisted,
        level=level,
        store=store,
        mall_order=mall_order["id"],
        store_order=store_order["id"],
        entry=waiting,
        lottery_entry=drawable,
        withdrawal=withdrawal,
        application=pending["id"],
        owner_entries={e["id"] for e in entries["items"]},
        owner_commissions={c["id"] for c in commissions},
    )


# --- what an allowed answer must hold ------------------------------------------------------------


def _items(value: dict[str, Any]) -> list[dict[str, Any]]:
    return value["items"]


def _all_mine(key: str) -> Callable[[Any, str, World], None]:
    """Every row belongs to the caller, and the owner does have some."""

    def check(value: Any, caller: str, world: World) -> None:
        rows = value["items"] if isinstance(value, dict) else value
        assert all(row[key] == world.me(caller) for row in rows), rows
        if caller == "owner":
            assert rows, "the owner's own rows are missing"

    return check


def _is_me(value: Any, caller: str, world: World) -> None:
    assert value["id"] == world.me(caller)


def _my_wallet(value: Any, caller: str, world: World) -> None:
    # The owner exchanged an entry of 1000 fen remaining for points at 100% and gave 2 × 100 away.
    assert value["points"] == {"owner": 800, "other": 100, "merchant": 100}[caller]


def _products(value: Any, caller: str, world: World) -> None:
    ids = {p["id"] for p in _items(value)}
    assert world.product in ids
    assert (world.unlisted in ids) == (caller == "operator"), "unlisted goods are the operator's"
    costs = {p["id"]: (p["costFen"], p["supplyPriceFen"]) for p in _items(value)}
    if caller == "operator":
        assert costs[world.unlisted] == (40, 60)
    else:
        assert set(costs.values()) == {(None, None)}, "cost and supply price are the operator's"


def _the_store_order(value: Any, caller: str, world: World) -> None:
    assert value["id"] == world.store_order


def _the_entry(value: Any, caller: str, world: World) -> None:
    assert value["id"] == world.entry
    assert value["process"] is not None


def _my_entries(value: Any, caller: str, world: World) -> None:
    ids = {e["id"] for e in _items(value)}
    if caller == "owner":
        assert ids == world.owner_entries
    else:
        assert not ids & world.owner_entries, "someone else's entries are listed"


def _my_notifications(value: Any, caller: str, world: World) -> None:
    entries = {str(n["payload"]["entryId"]) for n in _items(value) if "entryId" in n["payload"]}
    if caller == "owner":
        assert entries == world.owner_entries
    else:
        assert not entries & world.owner_entries, "someone else's notifications are listed"


def _my_commissions(value: Any, caller: str, world: World) -> None:
    ids = {c["id"] for c in _items(value)}
    if caller == "owner":
        assert ids == world.owner_commissions
    else:
        assert not ids & world.owner_commissions, "someone else's commissions are listed"


def _my_stores(value: Any, caller: str, world: World) -> None:
    assert all(s["ownerId"] == world.me(caller) for s in value), value
    if caller == "merchant":
        [store] = value
        assert store["id"] == world.store
        assert store["turnover"] == {"orderCount": 1, "paidFen": 5000}
        assert [o["id"] for o in store["orders"]["items"]] == [world.store_order]


def _all_withdrawals(value: Any, caller: str, world: World) -> None:
    assert world.withdrawal in {w["id"] for w in _items(value)}


def _all_applications(value: Any, caller: str, world: World) -> None:
    assert world.application in {a["id"] for a in _items(value)}


def _not_empty(value: Any, caller: str, world: World) -> None:
    assert value


def _audit_ok(value: Any, caller: str, world: World) -> None:
    assert value == {"ok": True, "violations": []}


@dataclass(frozen=True)
class Ask:
    document: str
    outcomes: tuple[str, str, str, str, str]
    variables: Callable[[World], dict[str, Any]] = lambda world: {}
    check: Callable[[Any, str, World], None] | None = None


QUERIES: dict[str, Ask] = {
    "me": Ask("{ me { id } }", MINE, check=_is_me),
    "wallet": Ask("{ wallet { balanceFen points } }", MINE, check=_my_wallet),
    "rebateDisplay": Ask("{ rebateDisplay { displayName } }", PUBLIC),
    "products": Ask(
        "{ products(first: 100) { items { id costFen supplyPriceFen } } }", PUBLIC, check=_products
    ),
    # The store's owner reads the store's orders through myStores, not through order(id).
    "order": Ask(
        "query($id: ID!) { order(id: $id) { id } }",
        OWNERS,
        lambda w: {"id": w.store_order},
        _the_store_order,
    ),
    "myOrders": Ask(
        "{ myOrders(first: 100) { items { userId } } }", MINE, check=_all_mine("userId")
    ),
    "entry": Ask(
        "query($id: ID!) { entry(id: $id) { id process { items { amountFen } } } }",
        OWNERS,
        lambda w: {"id": w.entry},
        _the_entry,
    ),
    "myEntries": Ask("{ myEntries(first: 100) { items { id } } }", MINE, check=_my_entries),
    "myCommissions": Ask(
        "{ myCommissions(first: 100) { items { id } } }", MINE, check=_my_commissions
    ),
    "myTeam": Ask(
        "{ myTeam(first: 100) { items { referrerId } } }", MINE, check=_all_mine("referrerId")
    ),
    "myMerchantApplications": Ask(
        "{ myMerchantApplications { applicantId } }", MINE, check=_all_mine("applicantId")
    ),
    "myStores": Ask(
        """{ myStores { id ownerId turnover { orderCount paidFen }
             orders(first: 100) { items { id } } } }""",
        MINE,
        check=_my_stores,
    ),
    "myWithdrawals": Ask(
        "{ myWithdrawals(first: 100) { items { userId } } }", MINE, check=_all_mine("userId")
    ),
    "rebateSettings": Ask("{ rebateSettings { enabled } }", OPERATOR),
    "distributionSettings": Ask("{ distributionSettings { directRateBp } }", OPERATOR),
    "memberLevels": Ask("{ memberLevels { id } }", PUBLIC, check=_not_empty),
    "queueStats": Ask("{ queueStats { queueKey waitingEntries } }", OPERATOR, check=_not_empty),
    "merchantApplications": Ask(
        "{ merchantApplications(first: 100) { items { id } } }", OPERATOR, check=_all_applications
    ),
    "withdrawals": Ask(
        "{ withdrawals(first: 100) { items { id } } }", OPERATOR, check=_all_withdrawals
    ),
    "notificationTemplates": Ask("{ notificationTemplates { event } }", OPERATOR),
    "myNotifications": Ask(
        "{ myNotifications(first: 100) { items { payload } } }", MINE, check=_my_notifications
    ),
    "audit": Ask("{ audit { ok violations } }", OPERATOR, check=_audit_ok),
}

# Run in this order by the callers let in; resetQueuesNow comes last, as it ends every entry.
MUTATIONS: dict[str, Ask] = {
    "login": Ask('mutation { login(code: "walker") { token } }', PUBLIC),
    "createOrder": Ask(
        "mutation($p: ID!) { createOrder(input: {lines: [{productId: $p, quantity: 1}]}) { id } }",
        MINE,
        lambda w: {"p": w.product},
    ),
    "createCashierOrder": Ask(
        "mutation($s: ID!) { createCashierOrder(input: {storeId: $s, amountFen: 100}) { id } }",
        MINE,
        lambda w: {"s": w.store},
    ),
    "confirmReceipt": Ask(
        "mutation($o: ID!) { confirmReceipt(orderId: $o) { status } }",
        BUYERS,
        lambda w: {"o": w.store_order},
    ),
    "drawLottery": Ask(
        "mutation($e: ID!) { drawLottery(entryId: $e) { ratioSource } }",
        BUYERS,
        lambda w: {"e": w.lottery_entry},
    ),
    "exchangeEntry": Ask(
        "mutation($e: ID!) { exchangeEntry(entryId: $e, target: LOVE_VALUE) { status } }",
        BUYERS,
        lambda w: {"e": w.entry},
    ),
    "requestWithdrawal": Ask("mutation { requestWithdrawal(amountFen: 100) { id } }", MINE),
    "transferPoints": Ask(
        "mutation($to: ID!) { transferPoints(toUserId: $to, points: 1) { points } }",
        MINE,
        lambda w: {"to": w.bystander},
    ),
    "applyMerchant": Ask(
        "mutation($i: MerchantApplicationInput!) { applyMerchant(input: $i) { id } }",
        MINE,
        lambda w: {"i": {**APPLICATION, "storeName": "新店"}},
    ),
    "referralQrCode": Ask("mutation { referralQrCode { scene } }", MINE),
    "merchantInviteQrCode": Ask("mutation { merchantInviteQrCode { scene } }", MINE),
    "cashierQrCode": Ask(
        "mutation($s: ID!) { cashierQrCode(storeId: $s) { scene } }",
        STORE,
        lambda w: {"s": w.store},
    ),
    "completeOrder": Ask(
        "mutation($o: ID!) { completeOrder(orderId: $o) { status } }",
        STORE,
        lambda w: {"o": w.store_order},
    ),
    "updateRebateSettings": Ask(
        'mutation { updateRebateSettings(input: {displayName: "改"}) { displayName } }', OPERATOR
    ),
    "updateNotificationTemplates": Ask(
        """mutation { updateNotificationTemplates(templates: [
             {event: "ENTRY_JOINED", templateId: "tpl", fields: [{key: "a1", source: "amountYuan"}]}
           ]) { event } }""",
        OPERATOR,
    ),
    "updateDistributionSettings": Ask(
        "mutation { updateDistributionSettings(input: {withdrawalMinFen: 500}) { directRateBp } }",
        OPERATOR,
    ),
    "upsertMemberLevel": Ask(
        'mutation { upsertMemberLevel(input: {name: "SVIP", rank: 2}) { id } }', OPERATOR
    ),
    "setUserLevels": Ask(
        "mutation($u: ID!, $l: ID) { setUserLevels(userId: $u, memberLevelId: $l) { id } }",
        OPERATOR,
        lambda w: {"u": w.users["owner"], "l": w.level},
    ),
    "upsertProduct": Ask(
        'mutation($p: ID) { upsertProduct(input: {id: $p, name: "改名"}) { id } }',
        OPERATOR,
        lambda w: {"p": w.product},
    ),
    "enableRebateForAllProducts": Ask("mutation { enableRebateForAllProducts }", OPERATOR),
    "upsertStore": Ask(
        'mutation($s: ID) { upsertStore(input: {id: $s, name: "改名"}) { id } }',
        OPERATOR,
        lambda w: {"s": w.store},
    ),
    "reviewMerchantApplication": Ask(
        """mutation($a: ID!) {
             reviewMerchantApplication(id: $a, approve: true, commissionRateBp: 300) {
               status } }""",
        OPERATOR,
        lambda w: {"a": w.application},
    ),
    "refundOrder": Ask(
        "mutation($o: ID!) { refundOrder(orderId: $o) { status } }",
        OPERATOR,
        lambda w: {"o": w.mall_order},
    ),
    "reviewWithdrawal": Ask(
        "mutation($w: ID!) { reviewWithdrawal(id: $w, approve: true) { status } }",
        OPERATOR,
        lambda w: {"w": w.withdrawal},
    ),
    "resetQueuesNow": Ask("mutation { resetQueuesNow }", OPERATOR),
}

TABLES = {"Query": QUERIES, "Mutation": MUTATIONS}


@functools.cache
def root_fields(type_name: str) -> list[str]:
    """The schema's own list of the root type's fields, as a client sees them."""
    schema = graphql.build_schema(build_schema().as_str())
    root = schema.get_type(type_name)
    assert isinstance(root, graphql.GraphQLObjectType)
    return list(root.fields)


# --- the walk ------------------------------------------------------------------------------------


async def ask(world: World, caller: str, name: str, row: Ask) -> str | None:
    """What went wrong with the caller's request, or None when the outcome is the expected one."""
    expected = row.outcomes[CALLERS.index(caller)]
    body = await world.apis[caller].raw(row.document, row.variables(world))
    errors = body.get("errors") or []
    if expected == OK:
        if errors:
            return f"{name} as {caller}: expected an answer, got {errors}"
        value = body["data"][name]
        if value is None:
            return f"{name} as {caller}: expected an answer, got null"
        if row.check is not None:
            try:
                row.check(value, caller, world)
            except AssertionError as exc:
                return f"{name} as {caller}: wrong answer {value}: {exc}"
        return None
    codes = [(e.get("extensions") or {}).get("code") for e in errors]
    if codes != [expected]:
        return f"{name} as {caller}: expected {expected}, got {errors or body.get('data')}"
    if (body.get("data") or {}).get(name) is not None:
        return f"{name} as {caller}: refused, but answered {body['data'][name]}"
    return None


SNAPSHOT_OPERATOR = """{
  withdrawals(first: 100) { items { id status } }
  merchantApplications(first: 100) { items { id status storeId } }
  rebateSettings { displayName paused }
  distributionSettings { withdrawalMinFen directRateBp }
  memberLevels { id name rank }
  notificationTemplates { event }
  products(first: 100) { items { id name listed rebate { enabled } } }
  queueStats { queueKey waitingEntries liabilityFen }
}"""
SNAPSHOT_CONSUMER = """{
  me { memberLevel { id } teamLevel { id } }
  wallet { balanceFen pendingCommissionFen points loveValue loveValueFrozen }
  myOrders(first: 100) { items { id status } }
  myEntries(first: 100) { items { id status ratioBp ratioSource } }
  myStores { id name commissionRateBp turnover { orderCount paidFen } }
  myMerchantApplications { id status }
  myWithdrawals(first: 100) { items { id status } }
}"""


async def snapshot(world: World) -> dict[str, Any]:
    """What a refused mutation must leave as it was."""
    state = {"operator": await world.apis["operator"](SNAPSHOT_OPERATOR)}
    for consumer in ("owner", "other", "merchant"):
        state[consumer] = await world.apis[consumer](SNAPSHOT_CONSUMER)
    return state


def test_every_root_field_has_an_expectation_for_every_caller() -> None:
    for type_name, table in TABLES.items():
        fields = root_fields(type_name)
        assert sorted(table) == sorted(fields), (
            f"{type_name}: fields without an authorization expectation: "
            f"{sorted(set(fields) - set(table))}; expectations of no field: "
            f"{sorted(set(table) - set(fields))}"
        )
        for name, row in table.items():
            assert len(row.outcomes) == len(CALLERS), name
            assert OK in row.outcomes, f"{name}: nobody may call it"
            [operation] = graphql.parse(row.document).definitions
            assert isinstance(operation, graphql.OperationDefinitionNode)
            [selection] = operation.selection_set.selections
            assert isinstance(selection, graphql.FieldNode)
            assert selection.name.value == name, f"the row of {name} asks {selection.name.value}"


async def test_every_query_as_every_caller(anonymous: Api, admin: Api) -> None:
    # Queries change nothing, so one world serves all five callers.
    world = await build_world(anonymous, admin)
    failures = [
        failure
        for caller in CALLERS
        for name in root_fields("Query")
        if (failure := await ask(world, caller, name, QUERIES[name]))
    ]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("caller", CALLERS)
async def test_every_mutation_as(caller: str, anonymous: Api, admin: Api) -> None:
    world = await build_world(anonymous, admin)
    index = CALLERS.index(caller)
    names = root_fields("Mutation")
    refused = [name for name in names if MUTATIONS[name].outcomes[index] != OK]
    allowed = [name for name in MUTATIONS if name in names and name not in refused]

    before = await snapshot(world)
    failures = [
        failure for name in refused if (failure := await ask(world, caller, name, MUTATIONS[name]))
    ]
    assert not failures, "\n".join(failures)
    assert await snapshot(world) == before, "a refused mutation changed something"

    failures = [
        failure for name in allowed if (failure := await ask(world, caller, name, MUTATIONS[name]))
    ]
    assert not failures, "\n".join(failures)
