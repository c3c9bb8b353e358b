"""The queue law as pure functions over plain data (SPEC §4, §7): no ORM, no clock, no I/O.

The service loads a queue's state under its lock, asks this module what happens, and writes the
answer and its ledger postings back in the same transaction. Property-based tests drive the same
functions through `QueueBook`, an in-memory queue.
"""

from __future__ import annotations

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
