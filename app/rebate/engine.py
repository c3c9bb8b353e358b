"""The queue law as pure functions over plain data (SPEC §4, §7): no ORM, no clock, no I/O.

The service loads a queue's state under its lock, asks this module what happens, and writes the
answer and its ledger postings back in the same transaction. Property-based tests drive the same
functions through `QueueBook`, an in-memory queue; `WaitingLine` is the same law for one queue in
the shape the engine benchmark times.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from app.enums import EntryStatus, RewardOrder
from app.money import apply_ratio


@dataclass(frozen=True, slots=True)
class Candidate:
    """A waiting entry as distribution sees it, in payout order."""

    entry_id: int
    remaining_fen: int


@dataclass(frozen=True, slots=True)
class Distribution:
    payouts: tuple[tuple[int, int], ...]  # (entry id, amount), in payout order
    returned_fen: int

    @property
    def paid_out_fen(self) -> int:
        return sum(amount for _, amount in self.payouts)


def distribute(
    contribution_fen: int, candidates: Iterable[Candidate], *, paused: bool
) -> Distribution:
    """Pay `contribution_fen` to `candidates` in order, each `min(left, remaining)` (SPEC §7).

    `candidates` must already be the eligible waiting entries in payout order. It is consumed
    lazily, so the caller can stream a long queue and stop reading once the money is used up.
    What nobody takes is returned to the platform; while paused everything is returned.
    """
    if contribution_fen < 0:
        raise ValueError("a contribution cannot be negative")
    if paused or contribution_fen == 0:
        return Distribution((), contribution_fen)
    left = contribution_fen
    payouts: list[tuple[int, int]] = []
    for candidate in candidates:
        if candidate.remaining_fen <= 0:
            continue
        amount = min(left, candidate.remaining_fen)
        payouts.append((candidate.entry_id, amount))
        left -= amount
        if left == 0:
            break
    return Distribution(tuple(payouts), left)


def entitlement(paid_fen: int, ratio_bp: int) -> int:
    return apply_ratio(paid_fen, ratio_bp)


def contribution(paid_fen: int, extraction_bp: int) -> int:
    return apply_ratio(paid_fen, extraction_bp)


@dataclass(slots=True)
class BookEntry:
    entry_id: int
    number: int
    owner: str
    paid_fen: int
    ratio_bp: int
    entitlement_fen: int
    rewarded_fen: int = 0
    status: EntryStatus = EntryStatus.WAITING
    order_completed: bool = False

    @property
    def remaining_fen(self) -> int:
        if self.status != EntryStatus.WAITING:
            return 0
        return self.entitlement_fen - self.rewarded_fen


@dataclass(frozen=True, slots=True)
class LineIn:
    """One rebate-enabled line of an order at its settlement event."""

    paid_fen: int
    extraction_bp: int
    ratio_bp: int
    eligible: bool = True


@dataclass(slots=True)
class QueueBook:
    """One queue held in memory: the reference model of the law that the database must match."""

    reward_order: RewardOrder = RewardOrder.QUEUE_ORDER
    paused: bool = False
    entries: list[BookEntry] = field(default_factory=list)
    returned_fen: int = 0
    contributed_fen: int = 0
    payouts: list[tuple[str, int, int]] = field(default_factory=list)  # (order ref, entry id, fen)

    def eligible_waiting(self) -> Iterator[BookEntry]:
        for entry in self.entries:
            if entry.status != EntryStatus.WAITING:
                continue
            if self.reward_order == RewardOrder.COMPLETED_FIRST and not entry.order_completed:
                continue
            yield entry

    def settle(
        self, order_ref: str, owner: str, lines: list[LineIn], *, order_completed: bool = False
    ) -> list[BookEntry]:
        """Contributions of every line first, then the order's new entries join (SPEC §4)."""
        by_id = {entry.entry_id: entry for entry in self.entries}
        for line in lines:
            amount = contribution(line.paid_fen, line.extraction_bp)
            self.contributed_fen += amount
            candidates = (Candidate(e.entry_id, e.remaining_fen) for e in self.eligible_waiting())
            result = distribute(amount, candidates, paused=self.paused)
            for entry_id, paid in result.payouts:
                entry = by_id[entry_id]
                entry.rewarded_fen += paid
                if entry.rewarded_fen == entry.entitlement_fen:
                    entry.status = EntryStatus.COMPLETED
                self.payouts.append((order_ref, entry_id, paid))
            self.returned_fen += result.returned_fen
        joined: list[BookEntry] = []
        for line in lines:
            if not line.eligible:
                continue
            entitled = entitlement(line.paid_fen, line.ratio_bp)
            entry = BookEntry(
                entry_id=len(self.entries) + 1,
                number=len(self.entries) + 1,
                owner=owner,
                paid_fen=line.paid_fen,
                ratio_bp=line.ratio_bp,
                entitlement_fen=entitled,
                status=EntryStatus.WAITING if entitled > 0 else EntryStatus.COMPLETED,
                order_completed=order_completed,
            )
            self.entries.append(entry)
            joined.append(entry)
        return joined


class WaitingLine:
    """One `QUEUE_ORDER` queue in memory, shaped for throughput: the same law as `QueueBook`.

    Entries are parallel arrays indexed by position (entry id = position + 1, as in `QueueBook`)
    with a head index before which every entry is finished, so a payout costs O(1) amortized
    however long the queue. `COMPLETED_FIRST` stays in `QueueBook`: here every waiting entry is
    eligible in entry order. Payouts are recorded in three parallel arrays (order number, entry
    id, fen) rather than as tuples, which keeps millions of them cheap to hold and out of the
    garbage collector's way.
    """

    __slots__ = (
        "_head",
        "_limit",
        "_order",
        "contributed_fen",
        "entitlement_fen",
        "paused",
        "payout_amounts",
        "payout_entries",
        "payout_orders",
        "remaining_fen",
        "returned_fen",
    )

    def __init__(self, *, paused: bool = False) -> None:
        self.paused = paused
        self.entitlement_fen = array("q")  # by position, fixed when the entry joins
        self.remaining_fen: list[int] = []  # by position, 0 once the entry is completed
        self.contributed_fen = 0
        self.returned_fen = 0
        self.payout_orders = array("q")
        self.payout_entries = array("q")
        self.payout_amounts = array("q")
        self._head = 0  # every entry before this position is completed
        self._order: int | None = None  # the order whose lines are being settled
        self._limit = 0  # entries from this position on joined with that order: it never pays them

    def __len__(self) -> int:
        return len(self.remaining_fen)

    @property
    def paid_out_fen(self) -> int:
        return self.contributed_fen - self.returned_fen

    def join(self, paid_fen: int, ratio_bp: int) -> int:
        """An entry joins at the back without a contribution (a queue loaded as it stands)."""
        entitled = entitlement(paid_fen, ratio_bp)
        self.entitlement_fen.append(entitled)
        self.remaining_fen.append(entitled)
        # Whatever order comes next is a new one, so it may pay this entry.
        self._order = None
        return len(self.remaining_fen)

    def rewarded_fen(self, entry_id: int) -> int:
        return self.entitlement_fen[entry_id - 1] - self.remaining_fen[entry_id - 1]

    def status(self, entry_id: int) -> EntryStatus:
        return EntryStatus.WAITING if self.remaining_fen[entry_id - 1] else EntryStatus.COMPLETED

    def payouts(self) -> list[tuple[int, int, int]]:
        """Every payout so far as (order number, entry id, fen), in payout order."""
        return list(zip(self.payout_orders, self.payout_entries, self.payout_amounts, strict=True))

    def settle(self, lines: Iterable[tuple[int, int, int, int, bool]]) -> None:
        """Settle `(order_no, paid_fen, extraction_bp, ratio_bp, eligible)` lines in turn (SPEC §4).

        Consecutive lines with the same order number are one order, also across calls. Each line's
        contribution is paid at once by `distribute`'s rule, and an eligible line joins at the back
        straight after; the order's own entries are still never paid by it, because its payouts
        stop at the position where the order's first entry joined.
        """
        # The hot loop of the engine benchmark: names are bound locally and the payout rule is
        # written out here (tests check it against `QueueBook`), so a line costs no object beyond
        # its two amounts.
        remaining = self.remaining_fen
        join_remaining = remaining.append
        join_entitlement = self.entitlement_fen.append
        pay_order = self.payout_orders.append
        pay_entry = self.payout_entries.append
        pay_amount = self.payout_amounts.append
        paused = self.paused
        head, order, limit = self._head, self._order, self._limit
        contributed = returned = 0
        try:
            for order_no, paid_fen, extraction_bp, ratio_bp, eligible in lines:
                if order_no != order:
                    order = order_no
                    limit = len(remaining)
                left = contribution(paid_fen, extraction_bp)
                # Both amounts are worked out (and validated) before the line changes anything.
                entitled = entitlement(paid_fen, ratio_bp) if eligible else 0
                contributed += left
                if left and not paused:
                    position = head
                    while position < limit:
                        owed = remaining[position]
                        if owed > left:
                            remaining[position] = owed - left
                            pay_order(order_no)
                            pay_entry(position + 1)
                            pay_amount(left)
                            left = 0
                            break
                        position += 1
                        if owed:
                            remaining[position - 1] = 0
                            pay_order(order_no)
                            pay_entry(position)
                            pay_amount(owed)
                            left -= owed
                            if not left:
                                break
                    head = position
                returned += left
                if eligible:
                    join_remaining(entitled)
                    join_entitlement(entitled)
        finally:
            # A line with an invalid amount stops the batch; the lines before it stay settled.
            self._head, self._order, self._limit = head, order, limit
            self.contributed_fen += contributed
            self.returned_fen += returned
