"""Progress answers already worked out, kept by this process under the queue's figure version.

What the progress screen shows of a waiting entry (how many eligible entries and how much money
wait ahead of it, the queue's daily inflow) is a function of the queue's state, and every change
to that state bumps the queue's version in the same transaction (`FigureDeltas.flush`). So an
answer computed from one snapshot at version V is the answer for as long as the database says V,
and a reader that already knows the version from its own statement needs no other. Consumers
refresh their progress screen far more often than a calm queue moves.

Only answers read from one snapshot whose version is known are kept. Entries expire after a
while so that a database emptied and refilled under a running process (its versions starting
again) cannot be answered from memory for long.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

MAX_ANSWERS = 20_000
TTL_SECONDS = 300.0


class Answers:
    """A bounded map of answers, least recently used first out, each for `ttl` seconds."""

    def __init__(self, size: int = MAX_ANSWERS, ttl: float = TTL_SECONDS) -> None:
        self._size = size
        self._ttl = ttl
        self._items: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def get(self, key: Hashable) -> Any | None:
        found = self._items.get(key)
        if found is None:
            return None
        if found[0] < time.monotonic():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return found[1]

    def put(self, key: Hashable, value: Any) -> None:
        self._items[key] = (time.monotonic() + self._ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


answers = Answers()
