"""The figure cache against a plain dict model: exact prefix sums or None, never stale ones.

The same tests run on InMemoryFigureCache and RedisFigureCache. The Redis cache runs on a real
Redis (db 12, flushed) because fakeredis needs `lupa` for Lua scripts, which is not installed;
those tests skip when no Redis answers.
"""

from __future__ import annotations

import asyncio
import unittest
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import pytest
import redis
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from app.rebate.figure_cache import (
    MIN_TREE_SIZE,
    ZERO,
    BucketSums,
    FigureCache,
    InMemoryFigureCache,
    RedisFigureCache,
    fenwick_add,
    fenwick_build,
    fenwick_grow,
    fenwick_prefix,
    fenwick_size,
)

REDIS_URL = "redis://127.0.0.1:6379/12"
T = TypeVar("T")


def _redis_answers() -> bool:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


REDIS_UP = _redis_answers()
needs_redis = pytest.mark.skipif(not REDIS_UP, reason=f"no Redis at {REDIS_URL}")

values = st.integers(min_value=-(10**12), max_value=10**12)
sums = st.builds(BucketSums, values, values, values, values)
# Mostly near blocks, sometimes far ones, so growth past the tree size happens often.
buckets = st.one_of(st.integers(0, 80), st.integers(0, 3000))
bucket_maps = st.dictionaries(buckets, sums, max_size=6)


def brute_prefix(model: dict[int, BucketSums], bucket: int) -> BucketSums:
    total = ZERO
    for b, s in model.items():
        if b < bucket:
            total = total + s
    return total


def added(model: dict[int, BucketSums], deltas: dict[int, BucketSums]) -> dict[int, BucketSums]:
    result = dict(model)
    for b, d in deltas.items():
        result[b] = result.get(b, ZERO) + d
    return result


# --- pure Fenwick helpers ---------------------------------------------------------------------


@given(bucket_maps, st.lists(st.tuples(buckets, sums), max_size=10), buckets)
def test_fenwick_helpers_match_brute_force(initial, adds, query):
    size = fenwick_size(max([*initial, *(b for b, _ in adds)], default=0))
    tree = fenwick_build(initial, size)
    model = dict(initial)
    for b, d in adds:
        fenwick_add(tree, size, b, d)
        model = added(model, {b: d})
    assert fenwick_prefix(tree, size, query) == brute_prefix(model, query)
    # Building from the final sums gives the same answers as adding step by step.
    rebuilt = fenwick_build(model, size)
    assert fenwick_prefix(rebuilt, size, query) == brute_prefix(model, query)


@given(bucket_maps, st.integers(1, 4))
def test_fenwick_grow_equals_a_rebuild(initial, doublings):
    size = fenwick_size(max(initial, default=0))
    tree = fenwick_build(initial, size)
    new_size = fenwick_grow(tree, size, size << doublings)
    assert new_size == size << doublings
    expected = fenwick_build(initial, new_size)
    assert {k: v for k, v in tree.items() if v} == {k: v for k, v in expected.items() if v}


def test_fenwick_size_is_the_next_power_of_two_above():
    assert fenwick_size(0) == MIN_TREE_SIZE
    assert fenwick_size(MIN_TREE_SIZE - 1) == MIN_TREE_SIZE
    assert fenwick_size(MIN_TREE_SIZE) == 2 * MIN_TREE_SIZE
    assert fenwick_size(9765) == 16384  # 10 million entries in blocks of 1024


# --- stateful: random load / apply / prefix against a model -----------------------------------


class CacheMachine(RuleBasedStateMachine):
    """Queues 1 and 2 in a model database with versions; the cache follows their commits.

    The model also tracks exactly what the cache should hold (version and tree size), so every
    prefix must be that exact answer: the right sums, or None when the cache should not know.
    """

    grows_in_place = True  # the in-memory cache grows; the Redis one drops the queue

    def make_cache(self) -> FigureCache:
        raise NotImplementedError

    def run(self, coroutine: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def __init__(self) -> None:
        super().__init__()
        # Each run gets its own loop: Hypothesis drives the machine from a synchronous test.
        self.loop = asyncio.new_event_loop()
        self.cache = self.make_cache()
        self.db: dict[int, dict[int, BucketSums]] = {1: {}, 2: {}}
        self.db_version = {1: 0, 2: 0}
        self.history: dict[int, dict[int, dict[int, BucketSums]]] = {1: {0: {}}, 2: {0: {}}}
        self.cached: dict[int, tuple[int, int] | None] = {1: None, 2: None}  # (version, size)

    def teardown(self) -> None:
        self.close_cache()
        self.loop.close()

    def close_cache(self) -> None:
        pass

    @initialize()
    def start(self) -> None:
        pass

    @rule(queue=st.sampled_from([1, 2]))
    def load(self, queue: int) -> None:
        model = self.db[queue]
        self.run(self.cache.load(queue, self.db_version[queue], dict(model)))
        self.cached[queue] = (self.db_version[queue], fenwick_size(max(model, default=0)))

    @rule(queue=st.sampled_from([1, 2]), data=st.data())
    def load_an_old_snapshot(self, queue: int, data: st.DataObject) -> None:
        """A slow reader read the database, then wrote its snapshot after newer commits."""
        version = data.draw(st.integers(0, self.db_version[queue]))
        model = self.history[queue][version]
        self.run(self.cache.load(queue, version, dict(model)))
        self.cached[queue] = (version, fenwick_size(max(model, default=0)))

    def _commit(self, queue: int, deltas: dict[int, BucketSums]) -> int:
        self.db[queue] = added(self.db[queue], deltas)
        self.db_version[queue] += 1
        self.history[queue][self.db_version[queue]] = dict(self.db[queue])
        return self.db_version[queue]

    @rule(queue=st.sampled_from([1, 2]), deltas=bucket_maps, wrong=st.integers(0, 3))
    def commit(self, queue: int, deltas: dict[int, BucketSums], wrong: int) -> None:
        """A transaction commits and applies its deltas, from the right version when wrong == 0.

        A wrong from_version is one the cache never held (ahead of the database). A wrong one
        that equals an older, stale cached version cannot be detected by any version check:
        the cache would take deltas that do not cover the gap. Callers must pass the version
        the transaction itself read (see FigureCache.apply).
        """
        old = self.db_version[queue]
        new = self._commit(queue, deltas)
        self.run(self.cache.apply(queue, old + wrong, new, deltas))
        cached = self.cached[queue]
        if cached is None:
            return
        if cached[0] != old + wrong:
            self.cached[queue] = None
            return
        needed = fenwick_size(max((b for b, d in deltas.items() if d), default=0))
        if needed > cached[1] and not self.grows_in_place:
            self.cached[queue] = None
        else:
            self.cached[queue] = (new, max(cached[1], needed))

    @rule(queue=st.sampled_from([1, 2]), deltas=bucket_maps)
    def commit_without_apply(self, queue: int, deltas: dict[int, BucketSums]) -> None:
        """A process died between the commit and the cache update."""
        self._commit(queue, deltas)

    @rule(queue=st.sampled_from([1, 2]))
    def drop(self, queue: int) -> None:
        self.run(self.cache.drop(queue))
        self.cached[queue] = None

    @rule(queue=st.sampled_from([1, 2]), bucket=buckets, data=st.data())
    def prefix(self, queue: int, bucket: int, data: st.DataObject) -> None:
        # Readers mostly ask for the current version; sometimes an older or a future one.
        version = data.draw(
            st.one_of(st.just(self.db_version[queue]), st.integers(-1, self.db_version[queue] + 1))
        )
        got = self.run(self.cache.prefix(queue, version, bucket))
        cached = self.cached[queue]
        if cached is None or cached[0] != version:
            assert got is None
        else:
            assert got == brute_prefix(self.history[queue][version], bucket)

    @rule(queue=st.sampled_from([1, 2]), bucket=buckets)
    def prefix_at_the_cached_version(self, queue: int, bucket: int) -> None:
        got = self.run(self.cache.prefix_any(queue, bucket))
        cached = self.cached[queue]
        if cached is None:
            assert got is None
        else:
            assert got == (cached[0], brute_prefix(self.history[queue][cached[0]], bucket))

    @precondition(
        lambda self: self.cached[1] is not None and self.cached[1][0] == self.db_version[1]
    )
    @rule(bucket=buckets)
    def current_cache_matches_the_database(self, bucket: int) -> None:
        got = self.run(self.cache.prefix(1, self.db_version[1], bucket))
        assert got == brute_prefix(self.db[1], bucket)


class InMemoryMachine(CacheMachine):
    def make_cache(self) -> FigureCache:
        return InMemoryFigureCache()


class RedisMachine(CacheMachine):
    grows_in_place = False

    def make_cache(self) -> FigureCache:
        self.client = redis.asyncio.Redis.from_url(REDIS_URL)
        self.run(self.client.flushdb())
        return RedisFigureCache(self.client)

    def close_cache(self) -> None:
        self.run(self.client.aclose())


InMemoryMachine.TestCase.settings = settings(max_examples=150, deadline=None)
RedisMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestInMemoryCacheMachine = InMemoryMachine.TestCase
TestRedisCacheMachine = unittest.skipUnless(REDIS_UP, f"no Redis at {REDIS_URL}")(
    RedisMachine.TestCase
)


# --- targeted cases on both caches ------------------------------------------------------------


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[FigureCache]:
    if request.param == "memory":
        yield InMemoryFigureCache()
        return
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    await client.flushdb()
    try:
        yield RedisFigureCache(client)
    finally:
        await client.aclose()


def s(wc: int, wf: int = 0, cc: int = 0, cf: int = 0) -> BucketSums:
    return BucketSums(wc, wf, cc, cf)


async def test_prefix_sums_the_buckets_below(cache: FigureCache):
    await cache.load(7, 3, {0: s(1, 100), 2: s(2, 200, 1, 50), 5: s(4, 400)})
    assert await cache.prefix(7, 3, 0) == ZERO
    assert await cache.prefix(7, 3, 1) == s(1, 100)
    assert await cache.prefix(7, 3, 3) == s(3, 300, 1, 50)
    assert await cache.prefix(7, 3, 10**6) == s(7, 700, 1, 50)


async def test_version_mismatch_reads_none(cache: FigureCache):
    assert await cache.prefix(7, 0, 5) is None  # not cached
    await cache.load(7, 3, {0: s(1)})
    assert await cache.prefix(7, 2, 5) is None
    assert await cache.prefix(7, 4, 5) is None
    assert await cache.prefix(7, 3, 5) == s(1)
    assert await cache.prefix(8, 3, 5) is None  # another queue


async def test_apply_moves_the_version_and_adds(cache: FigureCache):
    await cache.load(7, 3, {0: s(1, 100)})
    await cache.apply(7, 3, 4, {0: s(-1, -100), 1: s(1, 50, 1, 50)})
    assert await cache.prefix(7, 3, 5) is None
    assert await cache.prefix(7, 4, 5) == s(1, 50, 1, 50)
    assert await cache.prefix(7, 4, 1) == s(0, 0)


async def test_wrong_from_version_drops_until_the_next_load(cache: FigureCache):
    await cache.load(7, 3, {0: s(1)})
    await cache.apply(7, 2, 4, {0: s(1)})
    for version in (2, 3, 4):
        assert await cache.prefix(7, version, 5) is None
    # The correct next change cannot resurrect it either.
    await cache.apply(7, 3, 4, {0: s(1)})
    await cache.apply(7, 4, 5, {0: s(1)})
    assert await cache.prefix(7, 5, 5) is None
    await cache.load(7, 5, {0: s(3)})
    assert await cache.prefix(7, 5, 5) == s(3)


async def test_apply_to_an_uncached_queue_does_nothing(cache: FigureCache):
    await cache.apply(7, 0, 1, {0: s(1)})
    assert await cache.prefix(7, 1, 5) is None
    assert await cache.prefix(7, 0, 5) is None


async def test_a_bucket_beyond_the_tree_grows_or_rebuilds(cache: FigureCache):
    await cache.load(7, 1, {3: s(1, 10)})
    far = MIN_TREE_SIZE * 5 + 3  # beyond the smallest tree: it must grow
    await cache.apply(7, 1, 2, {far: s(2, 20), 4: s(1, 1)})
    got = await cache.prefix(7, 2, far + 1)
    if isinstance(cache, RedisFigureCache):
        assert got is None  # Redis drops the queue; the reader rebuilds from the database
        await cache.load(7, 2, {3: s(1, 10), 4: s(1, 1), far: s(2, 20)})
    assert await cache.prefix(7, 2, far) == s(2, 11)
    assert await cache.prefix(7, 2, far + 1) == s(4, 31)
    # And the grown tree keeps taking changes on both sides of the old size.
    await cache.apply(7, 2, 3, {0: s(1), far - 1: s(1)})
    assert await cache.prefix(7, 3, far) == s(4, 11)
    assert await cache.prefix(7, 3, 10_000) == s(6, 31)


async def test_large_sums_stay_exact(cache: FigureCache):
    big = 2**60  # beyond a double's exact integers: Lua must not do this arithmetic
    await cache.load(7, 1, {0: s(1, big), 1: s(1, big)})
    await cache.apply(7, 1, 2, {0: s(0, 3)})
    assert await cache.prefix(7, 2, 2) == s(2, 2 * big + 3)


async def test_drop_forgets_the_queue(cache: FigureCache):
    await cache.load(7, 1, {0: s(1)})
    await cache.drop(7)
    assert await cache.prefix(7, 1, 5) is None


async def test_concurrent_applies_do_not_interleave(cache: FigureCache):
    await cache.load(7, 0, {})
    # Each apply is atomic: exactly one chain of versions wins, the others see a mismatch.
    await asyncio.gather(*(cache.apply(7, v, v + 1, {v % 50: s(1, v)}) for v in range(100)))
    got = await cache.prefix(7, 100, 10_000)
    assert got is None or got == s(100, sum(range(100)))


@needs_redis
async def test_redis_keys_carry_a_ttl(redis_client: redis.asyncio.Redis):
    cache = RedisFigureCache(redis_client, ttl_seconds=3600)
    await cache.load(7, 1, {0: s(1), 900: s(2)})
    key = cache.key(7)
    assert key == "rebate:figures:7"
    assert 3500 < await redis_client.ttl(key) <= 3600
    await redis_client.expire(key, 10)
    await cache.apply(7, 1, 2, {5: s(1)})
    assert 3500 < await redis_client.ttl(key) <= 3600  # refreshed by the apply
    await cache.apply(7, 0, 3, {5: s(1)})
    assert await redis_client.exists(key) == 0  # wrong version: dropped, not left to expire


@needs_redis
async def test_redis_stores_a_sparse_tree(redis_client: redis.asyncio.Redis):
    cache = RedisFigureCache(redis_client)
    await cache.load(7, 1, {9000: s(1)})
    fields = await redis_client.hgetall(cache.key(7))
    # size 16384, one bucket: its node and the O(log B) ancestors only, one field each.
    assert fields[b"size"] == b"16384"
    assert len(fields) - 2 <= 15
