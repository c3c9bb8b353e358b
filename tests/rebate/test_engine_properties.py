"""The pure queue law, driven by Hypothesis: conservation, FIFO, no overpayment (SPEC §4, §7)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from app.enums import EntryStatus, RewardOrder
from app.money import allocate_proportionally, apply_ratio
from app.rebate.engine import Candidate, LineIn, QueueBook, distribute

ratios = st.integers(min_value=0, max_value=100_000)
amounts = st.integers(min_value=0, max_value=10**9)


@given(amounts, ratios)
def test_apply_ratio_rounds_down(amount, ratio):
    exact = amount * ratio / 10_000
    assert apply_ratio(amount, ratio) <= exact < apply_ratio(amount, ratio) + 1


def test_the_worked_example_amounts():
    assert apply_ratio(16800, 13000) == 21840
    assert apply_ratio(16800, 6500) == 10920


@given(
    st.integers(min_value=0, max_value=10**7),
    st.lists(st.integers(min_value=0, max_value=10**6), max_size=20),
)
def test_allocation_is_exact_and_proportional(total, weights):
    shares = allocate_proportionally(total, weights)
    if weights:
        assert sum(shares) == total
        weight_sum = sum(weights)
        if weight_sum:
            for share, weight in zip(shares[:-1], weights[:-1], strict=True):
                assert share == total * weight // weight_sum


@given(
    amounts,
    st.lists(st.integers(min_value=0, max_value=10**6), max_size=30),
    st.booleans(),
)
def test_distribution_conserves_money_and_fills_in_order(contribution, remainings, paused):
    candidates = [Candidate(i, r) for i, r in enumerate(remainings)]
    result = distribute(contribution, candidates, paused=paused)
    assert result.paid_out_fen + result.returned_fen == contribution
    if paused:
        assert result.payouts == ()
        return
    paid = dict(result.payouts)
    ids = [entry_id for entry_id, _ in result.payouts]
    assert ids == sorted(ids)
    for entry_id, amount in result.payouts:
        assert 0 < amount <= remainings[entry_id]
    # Every entry before the last one paid was filled; nothing returns while someone could take it.
    for entry_id in ids[:-1]:
        assert paid[entry_id] == remainings[entry_id]
    if result.returned_fen:
        assert all(paid.get(i, 0) == r for i, r in enumerate(remainings))


class QueueLaw(RuleBasedStateMachine):
    """Random orders, completions and pauses against the reference book; §19's invariants hold."""

    def __init__(self) -> None:
        super().__init__()
        self.book = QueueBook()
        self.orders = 0
        self.completed_orders: set[str] = set()
        self.entry_order: dict[int, str] = {}

    @rule(
        lines=st.lists(
            st.tuples(
                st.integers(min_value=1, max_value=50_000),
                st.integers(min_value=0, max_value=10_000),
                st.integers(min_value=0, max_value=30_000),
                st.booleans(),
            ),
            min_size=1,
            max_size=3,
        )
    )
    def settle_an_order(self, lines):
        self.orders += 1
        ref = f"o{self.orders}"
        before = {e.entry_id for e in self.book.entries}
        paid_before = sum(e.rewarded_fen for e in self.book.entries)
        waiting_before = [(e, e.rewarded_fen) for e in self.book.eligible_waiting()]
        joined = self.book.settle(
            ref,
            ref,
            [
                LineIn(paid, extraction, ratio, eligible)
                for paid, extraction, ratio, eligible in lines
            ],
        )
        for entry in joined:
            self.entry_order[entry.entry_id] = ref
        # An order never pays itself: its new entries received nothing.
        assert all(e.rewarded_fen == 0 for e in joined)
        assert {e.entry_id for e in joined}.isdisjoint(before)
        contributed = sum(apply_ratio(paid, extraction) for paid, extraction, _, _ in lines)
        assert sum(e.rewarded_fen for e in self.book.entries) - paid_before <= contributed
        # FIFO: the entries this order paid are a prefix of the eligible waiting line, each but
        # the last filled completely; with the queue paused nobody was paid.
        gained = [entry.rewarded_fen > old for entry, old in waiting_before]
        if self.book.paused:
            assert not any(gained)
        elif any(gained):
            last = max(i for i, g in enumerate(gained) if g)
            assert all(gained[: last + 1])
            assert all(entry.status == EntryStatus.COMPLETED for entry, _ in waiting_before[:last])

    @rule()
    def toggle_pause(self):
        self.book.paused = not self.book.paused

    @rule(completed_first=st.booleans())
    def switch_reward_order(self, completed_first):
        self.book.reward_order = (
            RewardOrder.COMPLETED_FIRST if completed_first else RewardOrder.QUEUE_ORDER
        )

    @rule(data=st.data())
    def complete_an_order(self, data):
        if not self.orders:
            return
        ref = f"o{data.draw(st.integers(min_value=1, max_value=self.orders))}"
        for entry in self.book.entries:
            if self.entry_order.get(entry.entry_id) == ref:
                entry.order_completed = True

    @invariant()
    def money_is_conserved(self):
        paid = sum(amount for _, _, amount in self.book.payouts)
        assert paid + self.book.returned_fen == self.book.contributed_fen
        assert paid == sum(e.rewarded_fen for e in self.book.entries)

    @invariant()
    def nobody_is_overpaid(self):
        for entry in self.book.entries:
            assert 0 <= entry.rewarded_fen <= entry.entitlement_fen
            if entry.status == EntryStatus.COMPLETED:
                assert entry.rewarded_fen == entry.entitlement_fen
            else:
                assert entry.rewarded_fen < entry.entitlement_fen


TestQueueLaw = QueueLaw.TestCase
TestQueueLaw.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=50_000),
            st.integers(min_value=0, max_value=10_000),
            st.integers(min_value=1, max_value=30_000),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_queue_order_pays_strictly_from_the_head(orders):
    book = QueueBook()
    for index, (paid, extraction, ratio) in enumerate(orders):
        book.settle(f"o{index}", f"u{index}", [LineIn(paid, extraction, ratio)])
        waiting = [e for e in book.entries if e.status == EntryStatus.WAITING]
        # At most the first waiting entry is part-paid; everyone behind it has nothing yet.
        assert all(e.rewarded_fen == 0 for e in waiting[1:])
