"""Progress answers kept under a queue's version (`app/rebate/answers.py`) are used only while the
queue stays at that version: after any change the screen shows what a fresh reading shows."""

from __future__ import annotations

from app.enums import EntryStatus, ExchangeTarget
from app.rebate import figures
from app.rebate.actions import exchange_entry
from app.rebate.models import Queue, QueueEntry
from app.rebate.progress import EntryView, entry_views, list_entries
from app.rebate.service import settle_orders
from app.rebate.settings import load_rebate_settings
from tests.support.orders import NOW, paid_orders


async def _screen(user_id: int) -> list[EntryView]:
    rows = await list_entries(user_id, status=None, before_id=None, limit=20)
    return await entry_views(rows, await load_rebate_settings(), now=NOW)


async def _fresh(user_id: int) -> list[EntryView]:
    figures.forget_answers()
    return await _screen(user_id)


async def test_a_kept_answer_serves_the_same_version_and_never_the_next(server):
    await settle_orders(await paid_orders(4, prefix="early"), now=NOW)
    last = await QueueEntry.filter(status=EntryStatus.WAITING).order_by("-number").first()
    first_screen = await _fresh(last.user_id)
    [view] = first_screen
    ahead = await QueueEntry.filter(status=EntryStatus.WAITING, number__lt=last.number).count()
    assert view.position == ahead + 1 and view.estimated_wait_days is not None
    assert len(figures.answers) == 2  # its place and its queue's inflow

    # Nothing changed: the same screen, from the kept answers.
    assert await _screen(last.user_id) == first_screen

    # A later order pays the head: a new version, so new figures for the same entry.
    await settle_orders(await paid_orders(1, prefix="late"), now=NOW)
    [moved] = await _screen(last.user_id)
    assert moved.amount_ahead_fen < view.amount_ahead_fen
    assert [moved] == await _fresh(last.user_id)


async def test_an_exchange_ahead_is_seen_at_once(server):
    await settle_orders(await paid_orders(3, prefix="early"), now=NOW)
    last = await QueueEntry.filter(status=EntryStatus.WAITING).order_by("-number").first()
    kept = await _fresh(last.user_id)
    queue = await Queue.get(id=last.queue_id)
    # An exchange of the head takes one entry and its remaining out of the first block: the
    # last entry's figures change with it.
    head = await QueueEntry.filter(status=EntryStatus.WAITING).order_by("number").first()
    await exchange_entry(head.id, ExchangeTarget.POINTS, user_id=None, now=NOW)
    assert (await Queue.get(id=queue.id)).version > queue.version
    assert await _screen(last.user_id) == await _fresh(last.user_id) != kept


async def test_every_touch_of_a_queue_makes_a_new_version_even_when_it_cancels_out(server):
    await settle_orders(await paid_orders(2, prefix="early"), now=NOW)
    queue = await Queue.first()
    deltas = figures.FigureDeltas()
    # +1 and −1 waiting entry with the same money, in one block: sums unchanged.
    deltas.waiting(queue.id, 0, 1, 500, completed=False)
    deltas.waiting(queue.id, 1, -1, -500, completed=False)
    from tortoise.transactions import in_transaction

    async with in_transaction() as conn:
        await deltas.flush(conn)
    assert (await Queue.get(id=queue.id)).version == queue.version + 1


async def test_a_page_read_raw_says_what_the_models_say(server):
    ids = await paid_orders(3, prefix="raw")
    await settle_orders(ids, now=NOW)
    head = await QueueEntry.filter(status=EntryStatus.WAITING).order_by("number").first()
    await exchange_entry(head.id, ExchangeTarget.POINTS, user_id=None, now=NOW)  # an ended_at
    for model in await QueueEntry.all():
        [row] = await list_entries(model.user_id, status=None, before_id=model.id + 1, limit=1)
        for name in row.__slots__:
            if name in ("queue_version", "settings_revision"):
                continue
            mine, theirs = getattr(row, name), getattr(model, name)
            if name == "lottery_config":  # the driver's form; only whether it is set is read
                mine, theirs = mine is None, theirs is None
            assert (mine, type(mine)) == (theirs, type(theirs)), name
        queue = await Queue.get(id=model.queue_id)
        assert row.queue_version == queue.version
