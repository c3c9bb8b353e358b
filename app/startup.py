"""What a long-running process (`rebate serve`, `rebate worker`) does once it has started."""

from __future__ import annotations

import gc

# Objects the young generation holds before the collector looks at it (CPython's default: 700).
YOUNG_GENERATION = 20_000


def prepare_collector() -> None:
    """Leave what a started process holds for good out of the collector's full passes, and let
    the young generation outgrow the requests in flight.

    Modules, the GraphQL schema, the ORM's models and the pools are ~125k objects in the API,
    which the cyclic collector walks at every full collection; under load one comes every few
    hundred milliseconds (requests in flight outlive the young generations). Measured in the
    notify benchmark: 55-80 ms per full collection, every request in flight held up meanwhile;
    with these frozen, 3-13 ms. What is frozen is never collected, so the garbage of start-up
    is collected first.

    With 100 notifications in flight in a process, their objects alone fill CPython's young
    generation of 700 every few requests: each collection walked them, found them alive, and
    moved them on to the older generations, whose growth then set off the full collections.
    Yet recording a notification leaves no cycle behind (traced: nothing collected over 1,000
    of them), so those passes freed nothing. Measured over 20,000 notifications: 15 us of CPU
    per notification in the collector, 9% of the server's, and a full collection every ~2,000
    notifications per process. With room for 20,000 objects, a 2,000-notification run sees no
    collection at all; the cycles other requests leave (GraphQL's) wait a little longer.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, middle, old)
