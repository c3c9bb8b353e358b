"""How big each benchmark runs: `full` is the issue's sizes, `small` a run of about a minute."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scale:
    name: str
    engine_waiting: int  # waiting entries ahead in the pure engine's queue
    engine_lines: int  # lines settled and timed
    settle_orders: int  # paid orders the workers settle
    settle_baseline_orders: int  # orders the naive one-transaction-per-order baseline settles
    settle_workers: int
    notify_count: int  # valid notifications sent
    notify_concurrency: int
    progress_waiting: int  # waiting entries ahead of the measured one
    progress_samples: int
    http_requests: int
    http_concurrency: int
    memory_waiting: int


FULL = Scale(
    name="full",
    engine_waiting=1_000_000,
    engine_lines=1_000_000,
    settle_orders=20_000,
    settle_baseline_orders=2_000,
    settle_workers=2,
    notify_count=2_000,
    notify_concurrency=200,
    progress_waiting=1_000_000,
    progress_samples=2_000,
    http_requests=10_000,
    http_concurrency=32,
    memory_waiting=1_000_000,
)

SMALL = Scale(
    name="small",
    engine_waiting=100_000,
    engine_lines=200_000,
    settle_orders=3_000,
    settle_baseline_orders=500,
    settle_workers=2,
    notify_count=400,
    notify_concurrency=200,
    progress_waiting=100_000,
    progress_samples=500,
    http_requests=2_000,
    http_concurrency=32,
    memory_waiting=100_000,
)

SCALES = {"full": FULL, "small": SMALL}
