"""The lists a screen shows read a bounded number of SQL statements, however long they are."""

from __future__ import annotations

from app.catalog.service import upsert_product
from app.members.service import login_with_openid
from app.orders.service import LineRequest, create_order
from app.rebate.figures import forget_answers, warm_figure_caches
from app.rebate.service import settle_orders
from app.rebate.settings import forget_rebate_settings
from tests.support.orders import NOW, pay

ENTRIES = """query($first: Int) { myEntries(first: $first) { items {
  id status remainingFen number position amountAheadFen estimatedWaitDays lotteryAvailable
  process(first: 5) { items { fromOrderId amountFen payerNickname payerAvatarUrl } nextCursor }
} nextCursor } }"""

COMMISSIONS = """query($first: Int) { myCommissions(first: $first) { items {
  id kind status amountFen fromUserId orderId storeId createdAt } nextCursor } }"""


async def _orders(user_id: int, product_ids: list[int], count: int, tag: str) -> list[int]:
    ids = []
    for index in range(count):
        lines = [LineRequest(product_id, 1) for product_id in product_ids]
        order = await create_order(user_id, lines, now=NOW)
        await pay(order, f"{tag}-{index:06d}")
        ids.append(order.id)
    return ids


async def test_my_entries_with_their_process_read_a_bounded_number_of_statements(anonymous, admin):
    # Three queues (one per product), so the figures of several queues are read together.
    await admin("mutation { updateRebateSettings(input: {mallQueue: false}) { paused } }")
    products = [
        (
            await upsert_product(
                {"name": f"礼盒{n}", "price_fen": 1000 + n, "rebate": {"enabled": True}}
            )
        ).id
        for n in range(3)
    ]
    consumer = await anonymous.login("many")
    other = await login_with_openid("other-buyer", "session")
    # 40 orders of three lines = 120 entries; another buyer's orders between them pay them out.
    order_ids: list[int] = []
    for round_ in range(40):
        order_ids += await _orders(int(consumer.user_id), products, 1, f"mine{round_}")
        order_ids += await _orders(other.id, products[:1], 1, f"other{round_}")
    assert len(await settle_orders(order_ids, now=NOW)) == len(order_ids)

    await warm_figure_caches()  # what the timers do: the figure cache holds each queue
    _forget_what_is_kept()
    eighty, statements_for_eighty = await consumer.counted(ENTRIES, first=80)
    _forget_what_is_kept()
    hundred, statements_for_hundred = await consumer.counted(ENTRIES, first=100)
    again, statements_again = await consumer.counted(ENTRIES, first=100)

    for page, size in ((eighty, 80), (hundred, 100)):
        items = page["myEntries"]["items"]
        assert len(items) == size
        waiting = [item for item in items if item["status"] == "WAITING"]
        assert waiting and all(item["position"] >= 1 for item in waiting)
        paid = [item for item in items if item["process"]["items"]]
        assert paid and paid[0]["process"]["items"][0]["payerNickname"] is not None
    # Page, settings, entries' figures (partial blocks with versions, inflow), payouts and payers:
    # the same handful for 80 entries as for 100.
    assert statements_for_hundred == statements_for_eighty <= 5
    # Asked again with nothing changed: the figures kept at the queues' versions and the
    # settings kept at their revision answer; only the page (which tells both) and the payouts
    # are read.
    assert again == hundred
    assert statements_again == 2


def _forget_what_is_kept() -> None:
    forget_answers()
    forget_rebate_settings()


async def test_my_commissions_read_a_bounded_number_of_statements(anonymous, admin):
    await admin(
        """mutation { updateDistributionSettings(input: {directRateBp: 1000, indirectRateBp: 500})
           { directRateBp } }"""
    )
    referrer = await anonymous.login("referrer")
    code = (await referrer("{ me { referrerCode } }"))["me"]["referrerCode"]
    buyer = await anonymous.login("buyer", referrer_code=code)
    product = (
        await upsert_product({"name": "礼盒", "price_fen": 16800, "rebate": {"enabled": True}})
    ).id
    order_ids = await _orders(int(buyer.user_id), [product], 60, "buyer")
    assert len(await settle_orders(order_ids, now=NOW)) == 60

    ten, statements_for_ten = await referrer.counted(COMMISSIONS, first=10)
    hundred, statements_for_hundred = await referrer.counted(COMMISSIONS, first=100)
    assert len(ten["myCommissions"]["items"]) == 10
    assert [c["amountFen"] for c in hundred["myCommissions"]["items"]] == [1680] * 60
    assert statements_for_hundred == statements_for_ten <= 2


async def test_my_team_with_levels_and_my_orders_read_a_bounded_number_of_statements(
    anonymous, admin
):
    from app.members.models import MemberLevel, TeamLevel, User

    referrer = await anonymous.login("leader")
    code = (await referrer("{ me { referrerCode } }"))["me"]["referrerCode"]
    gold = await MemberLevel.create(name="金卡", rank=2)
    silver = await MemberLevel.create(name="银卡", rank=1)
    team = await TeamLevel.create(name="团长", rate_bp=300, shareholder=False)
    for index in range(30):
        member = await anonymous.login(f"member{index}", referrer_code=code)
        await User.filter(id=int(member.user_id)).update(
            member_level_id=(gold if index % 2 else silver).id, team_level_id=team.id
        )
    query = """query($first: Int) { myTeam(first: $first) { items {
      id memberLevel { name rank } teamLevel { name rateBp } } nextCursor } }"""
    ten, statements_for_ten = await referrer.counted(query, first=10)
    thirty, statements_for_thirty = await referrer.counted(query, first=30)
    assert len(ten["myTeam"]["items"]) == 10
    levels = {item["memberLevel"]["name"] for item in thirty["myTeam"]["items"]}
    assert len(thirty["myTeam"]["items"]) == 30 and levels == {"金卡", "银卡"}
    assert statements_for_thirty == statements_for_ten <= 3

    product = (
        await upsert_product({"name": "礼盒", "price_fen": 500, "rebate": {"enabled": True}})
    ).id
    buyer = await anonymous.login("orders")
    order_ids = await _orders(int(buyer.user_id), [product, product], 30, "orders")
    await settle_orders(order_ids, now=NOW)
    query = """query($first: Int) { myOrders(first: $first) { items {
      id status lines { id paidFen queueKey } } nextCursor } }"""
    ten, statements_for_ten = await buyer.counted(query, first=10)
    thirty, statements_for_thirty = await buyer.counted(query, first=30)
    assert [len(order["lines"]) for order in thirty["myOrders"]["items"]] == [2] * 30
    assert statements_for_thirty == statements_for_ten <= 2
