"""`WaitingLine`, the engine benchmark's fast queue, pays exactly as the reference `QueueBook`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.enums import EntryStatus
from app.rebate.engine import BookEntry, LineIn, QueueBook, WaitingLine, entitlement

# Small amounts and round ratios make a contribution that exactly fills an entry common: the
# boundary between a full and a part payout.
paids = st.one_of(st.integers(min_value=0, max_value=3), st.integers(min_value=0, max_value=50_000))
extractions = st.one_of(st.sampled_from([0, 10_000]), st.integers(0, 10_000))
ratios = st.one_of(st.sampled_from([0, 10_000]), st.integers(0, 30_000))
lines = st.tuples(paids, extractions, ratios, st.booleans())  # ratio 0: completed on joining
orders = st.lists(lines, min_size=1, max_size=3)
steps = st.one_of(
    st.tuples(st.just("pause"), st.booleans()),
    st.tuples(
        st.just("join"),
        paids,
        ratios,
    ),
    # Several orders in one `settle` call, cut in two calls somewhere (maybe inside an order).
    st.tuples(st.just("orders"), st.lists(orders, min_size=1, max_size=5), st.integers(0, 15)),
)


def _same(fast: WaitingLine, book: QueueBook) -> None:
    assert fast.payouts() == [(int(ref), entry_id, fen) for ref, entry_id, fen in book.payouts]
    assert fast.contributed_fen == book.contributed_fen
    assert fast.returned_fen == book.returned_fen
    assert fast.paid_out_fen == sum(fen for _, _, fen in book.payouts)
    assert len(fast) == len(book.entries)
    for entry in book.entries:
        assert fast.entitlement_fen[entry.entry_id - 1] == entry.entitlement_fen
        assert fast.rewarded_fen(entry.entry_id) == entry.rewarded_fen
        assert fast.status(entry.entry_id) == entry.status


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, max_size=25))
def test_waiting_line_pays_as_the_reference_book(script):
    book = QueueBook()
    fast = WaitingLine()
    number = 0
    for step in script:
        if step[0] == "pause":
            book.paused = fast.paused = step[1]
        elif step[0] == "join":
            _, paid, ratio = step
            entitled = entitlement(paid, ratio)
            position = len(book.entries) + 1
            book.entries.append(
                BookEntry(
                    entry_id=position,
                    number=position,
                    owner="u",
                    paid_fen=paid,
                    ratio_bp=ratio,
                    entitlement_fen=entitled,
                    status=EntryStatus.WAITING if entitled else EntryStatus.COMPLETED,
                )
            )
            assert fast.join(paid, ratio) == position
        else:
            _, batch, cut = step
            flat = []
            for order in batch:
                number += 1
                book.settle(str(number), "u", [LineIn(*line) for line in order])
                flat += [(number, *line) for line in order]
            cut = min(cut, len(flat))
            fast.settle(flat[:cut])
            fast.settle(iter(flat[cut:]))
        _same(fast, book)


def test_an_order_never_pays_its_own_entries():
    fast = WaitingLine()
    fast.settle([(1, 10_000, 6_500, 13_000, True), (1, 10_000, 6_500, 13_000, True)])
    assert fast.payouts() == []
    assert fast.returned_fen == 2 * 6_500
    fast.settle([(2, 10_000, 6_500, 13_000, True)])
    assert fast.payouts() == [(2, 1, 6_500)]


def test_a_contribution_that_fills_an_entry_exactly_stops_there():
    fast = WaitingLine()
    fast.settle([(1, 5, 10_000, 10_000, True), (1, 5, 10_000, 10_000, True)])
    fast.settle([(2, 5, 10_000, 10_000, True)])
    assert fast.payouts() == [(2, 1, 5)]
    assert [fast.status(1), fast.status(2)] == [EntryStatus.COMPLETED, EntryStatus.WAITING]


def test_an_invalid_line_stops_the_batch_and_changes_nothing_itself():
    fast = WaitingLine()
    fast.join(10_000, 13_000)
    with pytest.raises(ValueError):
        fast.settle([(1, 1_000, 6_500, 13_000, True), (2, 1_000, 6_500, -1, True)])
    assert fast.payouts() == [(1, 1, 650)]
    assert fast.contributed_fen == 650
    assert len(fast) == 2
