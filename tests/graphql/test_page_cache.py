"""The polled entries screen is answered as kept while its rows, settings and day stay the same,
and never after any of them changed (graphql_schema/page_cache.py)."""

from __future__ import annotations

from datetime import timedelta

from app.rebate.figures import forget_answers
from app.rebate.settings import forget_rebate_settings
from graphql_schema.context import Context
from graphql_schema.page_cache import forget_pages, pages
from tests.support.client import buy, create_product, pay_and_settle

SCREEN = """query($first: Int) { myEntries(first: $first) { items {
  id status position amountAheadFen estimatedWaitDays remainingFen } nextCursor } }"""

HIDE_AMOUNT = """mutation { updateRebateSettings(input: {display: {showPendingAmount: false}})
  { paused } }"""


async def _queue(anonymous, admin, *names: str):
    product = await create_product(admin, "礼盒", 16800)
    consumers = []
    for name in names:
        consumer = await anonymous.login(name)
        await pay_and_settle(consumer, await buy(consumer, product))
        consumers.append(consumer)
    return product, consumers


async def _fresh(consumer, **variables):
    forget_pages()
    forget_answers()
    forget_rebate_settings()
    return await consumer.counted(SCREEN, **variables)


async def test_a_polled_screen_is_answered_as_kept_until_its_queue_moves(anonymous, admin):
    product, (_, _, c) = await _queue(anonymous, admin, "a", "b", "c")
    first, _ = await _fresh(c, first=20)
    [entry] = first["myEntries"]["items"]
    assert entry["status"] == "WAITING" and entry["amountAheadFen"] > 0
    again, statements = await c.counted(SCREEN, first=20)
    assert again == first
    assert statements == 1  # the page's rows, which say nothing changed

    late = await anonymous.login("late")
    await pay_and_settle(late, await buy(late, product))  # pays the head: c's queue moved
    moved, statements = await c.counted(SCREEN, first=20)
    assert statements > 1
    assert moved["myEntries"]["items"][0]["amountAheadFen"] < entry["amountAheadFen"]
    assert moved == (await _fresh(c, first=20))[0]


async def test_a_settings_change_is_seen_by_the_next_poll(anonymous, admin):
    _, (_, b) = await _queue(anonymous, admin, "a", "b")
    shown, _ = await _fresh(b, first=20)
    assert shown["myEntries"]["items"][0]["amountAheadFen"] is not None
    assert await b.counted(SCREEN, first=20) == (shown, 1)
    await admin(HIDE_AMOUNT)
    hidden, _ = await b.counted(SCREEN, first=20)
    assert hidden["myEntries"]["items"][0]["amountAheadFen"] is None
    assert hidden["myEntries"]["items"][0]["position"] == shown["myEntries"]["items"][0]["position"]


async def test_kept_answers_belong_to_one_user_query_and_variables(anonymous, admin):
    product, (a, b) = await _queue(anonymous, admin, "a", "b")
    await pay_and_settle(b, await buy(b, product))  # b has two entries
    for consumer in (a, b):
        await consumer.counted(SCREEN, first=20)
    mine_a, _ = await a.counted(SCREEN, first=20)
    mine_b, _ = await b.counted(SCREEN, first=20)
    assert len(mine_a["myEntries"]["items"]) == 1
    assert len(mine_b["myEntries"]["items"]) == 2
    assert {e["id"] for e in mine_a["myEntries"]["items"]}.isdisjoint(
        e["id"] for e in mine_b["myEntries"]["items"]
    )
    one, _ = await b.counted(SCREEN, first=1)
    assert one["myEntries"]["items"] == mine_b["myEntries"]["items"][:1]
    assert one["myEntries"]["nextCursor"] is not None
    assert mine_b["myEntries"]["nextCursor"] is None
    by_status = "query($s: EntryStatus) { myEntries(status: $s) { items { id status } } }"
    waiting = await b(by_status, s="WAITING")
    assert await b(by_status, s="WAITING") == waiting
    assert {e["status"] for e in waiting["myEntries"]["items"]} == {"WAITING"}
    assert (await b(by_status, s="CANCELLED"))["myEntries"]["items"] == []


async def test_a_new_day_is_a_new_answer(anonymous, admin, monkeypatch):
    _, (_, b) = await _queue(anonymous, admin, "a", "b")
    await _fresh(b, first=20)
    assert (await b.counted(SCREEN, first=20))[1] == 1
    today = Context.now
    monkeypatch.setattr(Context, "now", lambda self: today(self) + timedelta(days=1))
    _, statements = await b.counted(SCREEN, first=20)
    assert statements == 2  # the page and the new day's inflow; the places are as they were
    assert (await b.counted(SCREEN, first=20))[1] == 1


async def test_screens_the_rows_do_not_decide_are_never_kept(anonymous, admin):
    _, (a, _) = await _queue(anonymous, admin, "a", "b")
    with_payouts = "{ myEntries { items { id process { items { amountFen payerNickname } } } } }"
    with_fragment = "{ myEntries { ...page } } fragment page on EntryPage { items { id } }"
    with_directive = "{ myEntries { items { id position @include(if: true) } } }"
    two_fields = "{ myEntries { items { id } } me { id } }"
    too_long = "{ myEntries { items { " + "id " * 500 + "} } }"
    forget_pages()
    for query in (with_payouts, with_fragment, with_directive, two_fields, too_long):
        first = await a(query)
        assert first["myEntries"]["items"]
        assert await a(query) == first
        assert len(pages._kept) == 0, query
    await a(SCREEN, first=20)
    assert len(pages._kept) == 1  # while the screen's own shape is kept


async def test_bad_arguments_are_refused_as_usual(anonymous, admin):
    _, (a,) = await _queue(anonymous, admin, "a")
    assert (await a.error(SCREEN, first=0)).code == "BAD_USER_INPUT"
    after = 'query { myEntries(after: "not-a-cursor") { items { id } } }'
    assert (await a.error(after)).code == "BAD_USER_INPUT"
    assert (await anonymous.error(SCREEN, first=20)).code == "UNAUTHENTICATED"
