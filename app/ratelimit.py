"""Fixed-window counters per caller: how many mutations one user (or address) may send a minute."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class RateLimiter:
    """In this process's memory: the embedded default, with one server process."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}

    def _window(self) -> int:
        return int(self._clock() // 60)

    async def allow(self, key: str) -> bool:
        """Count one more request of `key`; False once it is over the limit of this minute."""
        if self.per_minute <= 0:
            return True
        window = self._window()
        start, count = self._counts.get(key, (window, 0))
        if start != window:
            start, count = window, 0
        self._counts[key] = (start, count + 1)
        if len(self._counts) > 100_000:
            # Old windows only: a busy minute never forgets its own counts.
            self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
        return count + 1 <= self.per_minute


class RedisRateLimiter(RateLimiter):
    """Shared by every API process through Redis."""

    def __init__(self, redis: Any, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        super().__init__(per_minute, clock)
        self._redis = redis

    async def allow(self, key: str) -> bool:
        if self.per_minute <= 0:
            return True
        name = f"rebate:rate:{key}:{self._window()}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, 120)
            count, _ = await pipe.execute()
        return int(count) <= self.per_minute
