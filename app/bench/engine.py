"""Benchmark 1: order lines the pure queue engine settles per second on a queue a million long."""

from __future__ import annotations

import random
import time
from array import array
from itertools import repeat

from app.bench.infra import BenchEnv
from app.bench.report import BenchResult, Progress
from app.bench.scale import Scale
from app.enums import EntryStatus
from app.rebate.engine import BookEntry, LineIn, QueueBook, WaitingLine, entitlement

TARGET = 300_000  # lines per second
PAID_FEN = (1, 100_000)  # each line pays 0.01 to 1,000.00 yuan
RATIO_BP = 13_000
EXTRACTION_BP = 6_500
CHUNK = 20_000  # lines per settle call, so the progress bar moves while the clock runs
STEP = 10_000  # setup steps between progress updates
BASELINE_WAITING = 10_000
BASELINE_LINES = 3_000  # about two seconds of the reference model's head-first scans
SEED = 8


async def run(scale: Scale, progress: Progress, env: BenchEnv) -> BenchResult:
    rng = random.Random(SEED)

    stage = f"queue of {scale.engine_waiting:,}"
    setup = scale.engine_waiting + scale.engine_lines
    queue = WaitingLine()
    join = queue.join
    for done in range(scale.engine_waiting):
        join(rng.randint(*PAID_FEN), RATIO_BP)
        if done % STEP == 0:
            progress.update(done, setup, stage)
    paid = array("q")
    for done in range(scale.engine_lines):
        paid.append(rng.randint(*PAID_FEN))
        if done % STEP == 0:
            progress.update(scale.engine_waiting + done, setup, stage)
    progress.update(setup, setup, stage)

    # Every line is an order of its own, all eligible: the common case, and the one that adds
    # the most entries behind the head.
    stage = f"settle {scale.engine_lines:,} lines"
    elapsed = 0.0
    for start in range(0, scale.engine_lines, CHUNK):
        progress.update(start, scale.engine_lines, stage)
        end = min(start + CHUNK, scale.engine_lines)
        lines = zip(
            range(start, end),
            paid[start:end],
            repeat(EXTRACTION_BP),
            repeat(RATIO_BP),
            repeat(True),
            strict=False,
        )
        began = time.perf_counter()
        queue.settle(lines)
        elapsed += time.perf_counter() - began
    progress.update(scale.engine_lines, scale.engine_lines, stage)
    value = scale.engine_lines / elapsed

    baseline, baseline_seconds, agrees = _baseline(rng, progress)
    completed = sum(1 for owed in queue.remaining_fen if not owed)
    return BenchResult(
        name="engine",
        value=value,
        unit="lines/s",
        target=f">= {TARGET} lines/s",
        # A fast queue that pays differently from the reference model has measured nothing.
        met=value >= TARGET and agrees,
        baseline=baseline,
        ratio=value / baseline,
        details={
            "waiting_before": scale.engine_waiting,
            "lines": scale.engine_lines,
            "seconds": round(elapsed, 3),
            "payouts": len(queue.payout_amounts),
            "entries_after": len(queue),
            "completed_after": completed,
            "contributed_fen": queue.contributed_fen,
            "returned_fen": queue.returned_fen,
            "paid_fen": list(PAID_FEN),
            "ratio_bp": RATIO_BP,
            "extraction_bp": EXTRACTION_BP,
            "baseline": "QueueBook.settle, one line per order",
            "baseline_waiting_before": BASELINE_WAITING,
            "baseline_lines": BASELINE_LINES,
            "baseline_seconds": round(baseline_seconds, 3),
            "baseline_agrees": agrees,
        },
    )


def _baseline(rng: random.Random, progress: Progress) -> tuple[float, float, bool]:
    """Lines per second of the reference model, and whether the fast queue pays the same."""
    book = QueueBook()
    fast = WaitingLine()
    for position in range(BASELINE_WAITING):
        paid_fen = rng.randint(*PAID_FEN)
        entitled = entitlement(paid_fen, RATIO_BP)
        book.entries.append(
            BookEntry(
                entry_id=position + 1,
                number=position + 1,
                owner="bench",
                paid_fen=paid_fen,
                ratio_bp=RATIO_BP,
                entitlement_fen=entitled,
                status=EntryStatus.WAITING if entitled else EntryStatus.COMPLETED,
            )
        )
        fast.join(paid_fen, RATIO_BP)
    paid = [rng.randint(*PAID_FEN) for _ in range(BASELINE_LINES)]

    stage = f"baseline {BASELINE_LINES:,} lines"
    elapsed = 0.0
    for number, paid_fen in enumerate(paid):
        if number % 100 == 0:
            progress.update(number, BASELINE_LINES, stage)
        line = [LineIn(paid_fen, EXTRACTION_BP, RATIO_BP)]
        began = time.perf_counter()
        book.settle(str(number), "bench", line)
        elapsed += time.perf_counter() - began
    progress.update(BASELINE_LINES, BASELINE_LINES, stage)

    # The same lines through the fast queue must give the same payouts, returns and entries.
    fast.settle((number, p, EXTRACTION_BP, RATIO_BP, True) for number, p in enumerate(paid))
    agrees = (
        fast.payouts() == [(int(ref), entry_id, fen) for ref, entry_id, fen in book.payouts]
        and fast.returned_fen == book.returned_fen
        and [(fast.rewarded_fen(e.entry_id), fast.status(e.entry_id)) for e in book.entries]
        == [(e.rewarded_fen, e.status) for e in book.entries]
    )
    return BASELINE_LINES / elapsed, elapsed, agrees
