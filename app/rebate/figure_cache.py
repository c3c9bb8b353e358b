"""A cache of each queue's bucket prefix sums (the `queue_bucket` figures), kept as a Fenwick tree.

The progress screen needs, for an entry in block `b`, the four sums of the waiting entries over
all blocks `< b` (see `figures.ahead_of`). Summing `queue_bucket` rows is O(B) per read; a
Fenwick (binary indexed) tree over the block index answers in O(log B) and takes each committed
`FigureDeltas.buckets` change in O(log B).

Staleness is ruled out by versions, not by timing: every snapshot and every change carries the
queue's figure version. `apply(from, to)` only moves a cached queue from exactly `from` to `to`;
any other cached version means a change was missed, so the queue is dropped and the next reader
rebuilds it from the database with `load`. `prefix(version)` answers only when the cache holds
exactly the version the reader asks for, so a reader never sees sums of another version.

Tree layout, shared by the Python helpers and the Lua scripts: nodes are 1-indexed, bucket `b`
lives at node `b + 1`, node `i` holds the sums of buckets `[i - lowbit(i), i)`, where
`lowbit(i) = i & -i`. `size` is a power of two and every cached bucket is `< size`.
Absent nodes are zero, so a sparse dict (or hash) stores only the nodes that were ever touched.
"""

from __future__ import annotations

import asyncio
import heapq
from abc import ABC, abstractmethod
from dataclasses import dataclass

from redis.asyncio import Redis

# Small queues start with room for 256 blocks (65,536 entries) so they do not regrow every block.
MIN_TREE_SIZE = 256
DEFAULT_TTL_SECONDS = 3600
KEY_PREFIX = "rebate:figures:"


@dataclass(frozen=True, slots=True)
class BucketSums:
    """The four sums `queue_bucket` keeps for a block (or a range of blocks)."""

    waiting_count: int = 0
    waiting_fen: int = 0
    completed_count: int = 0
    completed_fen: int = 0

    def __add__(self, other: BucketSums) -> BucketSums:
        return BucketSums(
            self.waiting_count + other.waiting_count,
            self.waiting_fen + other.waiting_fen,
            self.completed_count + other.completed_count,
            self.completed_fen + other.completed_fen,
        )

    def __bool__(self) -> bool:
        return bool(
            self.waiting_count or self.waiting_fen or self.completed_count or self.completed_fen
        )

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.waiting_count, self.waiting_fen, self.completed_count, self.completed_fen)


ZERO = BucketSums()


# --- Fenwick tree helpers (pure; the Lua scripts below follow the same index arithmetic) ---------


def fenwick_size(max_bucket: int) -> int:
    """The smallest power of two above `max_bucket` (at least MIN_TREE_SIZE)."""
    size = MIN_TREE_SIZE
    while size <= max_bucket:
        size *= 2
    return size


def _check_bucket(bucket: int) -> None:
    if bucket < 0:
        raise ValueError(f"bucket must be >= 0, got {bucket}")


def fenwick_build(buckets: dict[int, BucketSums], size: int) -> dict[int, BucketSums]:
    """The sparse tree of `buckets` (all `< size`) in O(n log B) with n the non-zero buckets.

    Each node passes its sum on to its parent `i + lowbit(i)`, which is always larger, so taking
    the nodes in increasing order (a heap, as parents appear on the way) finishes every node
    before it is passed on.
    """
    tree: dict[int, BucketSums] = {}
    for bucket, sums in buckets.items():
        _check_bucket(bucket)
        if bucket >= size:
            raise ValueError(f"bucket {bucket} does not fit a tree of size {size}")
        if sums:
            tree[bucket + 1] = sums
    pending = list(tree)
    heapq.heapify(pending)
    while pending:
        node = heapq.heappop(pending)
        parent = node + (node & -node)
        if parent <= size:
            if parent not in tree:
                heapq.heappush(pending, parent)
                tree[parent] = tree[node]
            else:
                tree[parent] = tree[parent] + tree[node]
    return tree


def fenwick_add(tree: dict[int, BucketSums], size: int, bucket: int, delta: BucketSums) -> None:
    """Add `delta` to `bucket` (`< size`): the O(log B) nodes whose range covers it."""
    _check_bucket(bucket)
    if bucket >= size:
        raise ValueError(f"bucket {bucket} does not fit a tree of size {size}")
    node = bucket + 1
    while node <= size:
        tree[node] = tree.get(node, ZERO) + delta
        node += node & -node


def fenwick_prefix(tree: dict[int, BucketSums], size: int, bucket: int) -> BucketSums:
    """The sums of all buckets `< bucket`; past the tree that is everything it holds."""
    _check_bucket(bucket)
    node = min(bucket, size)
    total = ZERO
    while node > 0:
        total = total + tree.get(node, ZERO)
        node -= node & -node
    return total


def fenwick_grow(tree: dict[int, BucketSums], size: int, new_size: int) -> int:
    """Double the tree until it reaches `new_size` (a power of two); returns the new size.

    Gives exactly the tree `fenwick_build` would at the new size, in O(log) steps: when the
    size doubles from S to 2S, the new buckets are all zero, node 2S covers (0, 2S] and so equals
    node S, and nodes S+1 .. 2S-1 cover only new (zero) buckets.
    """
    while size < new_size:
        if size in tree:
            tree[2 * size] = tree[size]
        size *= 2
    return size


# --- The cache interface ----------------------------------------------------------------------


class FigureCache(ABC):
    """Per-queue bucket prefix sums at a known figure version."""

    @abstractmethod
    async def load(self, queue_id: int, version: int, buckets: dict[int, BucketSums]) -> None:
        """Store a full snapshot of the queue's bucket sums at `version`, replacing any entry."""

    @abstractmethod
    async def apply(
        self, queue_id: int, from_version: int, to_version: int, deltas: dict[int, BucketSums]
    ) -> None:
        """Atomically move a cached queue from `from_version` to `to_version` by adding `deltas`.

        A queue cached at another version is dropped (a change was missed); an uncached queue
        stays uncached.

        `deltas` must be exactly the change from `from_version` to `to_version`, and
        `from_version` the version the committing transaction itself read: the cache cannot
        tell a from_version that is wrong but equals a stale cached version from a right one.
        """

    @abstractmethod
    async def prefix(self, queue_id: int, version: int, bucket: int) -> BucketSums | None:
        """Sums over all buckets `< bucket`, or None unless the queue is cached at `version`."""

    @abstractmethod
    async def prefix_any(self, queue_id: int, bucket: int) -> tuple[int, BucketSums] | None:
        """(version, sums over all buckets `< bucket`) at whatever version is cached, or None.

        Lets a reader ask the cache and the database at the same time and keep the answer only
        when the two versions agree.
        """

    @abstractmethod
    async def drop(self, queue_id: int) -> None:
        """Forget the queue; the next reader rebuilds it."""


@dataclass(slots=True)
class _Tree:
    version: int
    size: int
    nodes: dict[int, BucketSums]


class InMemoryFigureCache(FigureCache):
    """The cache in this process's memory: the embedded default when there is no Redis."""

    def __init__(self) -> None:
        self._trees: dict[int, _Tree] = {}
        # The methods do not await today, so they cannot interleave anyway; the lock keeps apply
        # atomic should one ever gain an await (and makes the guarantee explicit).
        self._lock = asyncio.Lock()

    async def load(self, queue_id: int, version: int, buckets: dict[int, BucketSums]) -> None:
        size = fenwick_size(max(buckets, default=0))
        nodes = fenwick_build(buckets, size)
        async with self._lock:
            self._trees[queue_id] = _Tree(version, size, nodes)

    async def apply(
        self, queue_id: int, from_version: int, to_version: int, deltas: dict[int, BucketSums]
    ) -> None:
        for bucket in deltas:
            _check_bucket(bucket)
        async with self._lock:
            tree = self._trees.get(queue_id)
            if tree is None:
                return
            if tree.version != from_version:
                del self._trees[queue_id]
                return
            # Here the whole tree is at hand, so a new far block grows it in place rather than
            # sending the next reader to the database.
            tree.size = fenwick_grow(tree.nodes, tree.size, fenwick_size(max(deltas, default=0)))
            for bucket, delta in deltas.items():
                if delta:
                    fenwick_add(tree.nodes, tree.size, bucket, delta)
            tree.version = to_version

    async def prefix(self, queue_id: int, version: int, bucket: int) -> BucketSums | None:
        _check_bucket(bucket)
        async with self._lock:
            tree = self._trees.get(queue_id)
            if tree is None or tree.version != version:
                return None
            return fenwick_prefix(tree.nodes, tree.size, bucket)

    async def prefix_any(self, queue_id: int, bucket: int) -> tuple[int, BucketSums] | None:
        _check_bucket(bucket)
        async with self._lock:
            tree = self._trees.get(queue_id)
            if tree is None:
                return None
            return tree.version, fenwick_prefix(tree.nodes, tree.size, bucket)

    async def drop(self, queue_id: int) -> None:
        async with self._lock:
            self._trees.pop(queue_id, None)


# --- Redis ------------------------------------------------------------------------------------
#
# One hash per queue: `version`, `size`, and per non-zero node i the fields wc:i, wf:i, cc:i,
# cf:i. Four integer fields rather than one "wc,wf,cc,cf" string so apply can use HINCRBY:
# Redis adds them as exact 64-bit integers, where Lua numbers are doubles (exact only to 2^53,
# and printed with 14 digits). For the same reason the prefix script returns the O(log B) node
# values and Python adds them.

# KEYS[1] the queue's hash; ARGV: from_version, to_version, ttl, then per delta bucket five
# values: bucket, wc, wf, cc, cf. Returns 1 applied, 0 not cached, -1 version mismatch (dropped),
# -2 bucket beyond the tree (dropped: growing needs no data here, but a rebuild is rare and keeps
# the script simple).
_APPLY_LUA = """
local version = redis.call('HGET', KEYS[1], 'version')
if not version then return 0 end
if version ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  return -1
end
local size = tonumber(redis.call('HGET', KEYS[1], 'size'))
-- Check every bucket before writing, so a dropped queue was never half updated.
for j = 4, #ARGV, 5 do
  if tonumber(ARGV[j]) >= size then
    redis.call('DEL', KEYS[1])
    return -2
  end
end
local names = {'wc:', 'wf:', 'cc:', 'cf:'}
for j = 4, #ARGV, 5 do
  local node = tonumber(ARGV[j]) + 1
  while node <= size do
    for k = 1, 4 do
      local delta = ARGV[j + k]
      if delta ~= '0' then
        redis.call('HINCRBY', KEYS[1], names[k] .. node, delta)
      end
    end
    node = node + bit.band(node, -node)
  end
end
redis.call('HSET', KEYS[1], 'version', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS[1] the queue's hash, ARGV[1] the bucket. Returns nil when the queue is not cached, else its
# version followed by the values (nil for absent nodes) of wc, wf, cc, cf of each node on the
# path; the caller checks the version.
_PREFIX_ANY_LUA = """
local version = redis.call('HGET', KEYS[1], 'version')
if not version then return false end
local size = tonumber(redis.call('HGET', KEYS[1], 'size'))
local node = math.min(tonumber(ARGV[1]), size)
local fields = {}
while node > 0 do
  table.insert(fields, 'wc:' .. node)
  table.insert(fields, 'wf:' .. node)
  table.insert(fields, 'cc:' .. node)
  table.insert(fields, 'cf:' .. node)
  node = node - bit.band(node, -node)
end
local answer = {version}
if #fields > 0 then
  local values = redis.call('HMGET', KEYS[1], unpack(fields))
  for i = 1, #fields do answer[i + 1] = values[i] end
end
return answer
"""

_FIELD_NAMES = ("wc", "wf", "cc", "cf")


def _node_sums(values: list[object]) -> BucketSums:
    totals = [0, 0, 0, 0]
    for index, value in enumerate(values):
        if value is not None:
            totals[index % 4] += int(value)  # type: ignore[call-overload]
    return BucketSums(*totals)


class RedisFigureCache(FigureCache):
    """The cache in Redis, shared by every process; apply and prefix are one Lua call each."""

    def __init__(
        self, redis: Redis, *, ttl_seconds: int = DEFAULT_TTL_SECONDS, key_prefix: str = KEY_PREFIX
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._prefix = key_prefix
        self._apply = redis.register_script(_APPLY_LUA)
        self._prefix_any = redis.register_script(_PREFIX_ANY_LUA)

    def key(self, queue_id: int) -> str:
        return f"{self._prefix}{queue_id}"

    async def load(self, queue_id: int, version: int, buckets: dict[int, BucketSums]) -> None:
        size = fenwick_size(max(buckets, default=0))
        mapping: dict[str, int] = {"version": version, "size": size}
        for node, sums in fenwick_build(buckets, size).items():
            for name, value in zip(_FIELD_NAMES, sums.as_tuple(), strict=True):
                if value:
                    mapping[f"{name}:{node}"] = value
        key = self.key(queue_id)
        # MULTI: readers see the old snapshot or the new one, never a mix of the two.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, self._ttl)
            await pipe.execute()

    async def apply(
        self, queue_id: int, from_version: int, to_version: int, deltas: dict[int, BucketSums]
    ) -> None:
        args: list[int] = [from_version, to_version, self._ttl]
        for bucket, delta in sorted(deltas.items()):
            _check_bucket(bucket)
            if delta:
                args.append(bucket)
                args.extend(delta.as_tuple())
        await self._apply(keys=[self.key(queue_id)], args=args)

    async def prefix(self, queue_id: int, version: int, bucket: int) -> BucketSums | None:
        answer = await self.prefix_any(queue_id, bucket)
        if answer is None or answer[0] != version:
            return None
        return answer[1]

    async def prefix_any(self, queue_id: int, bucket: int) -> tuple[int, BucketSums] | None:
        _check_bucket(bucket)
        answer = await self._prefix_any(keys=[self.key(queue_id)], args=[bucket])
        if answer is None:
            return None
        return int(answer[0]), _node_sums(list(answer[1:]))

    async def drop(self, queue_id: int) -> None:
        await self._redis.delete(self.key(queue_id))
