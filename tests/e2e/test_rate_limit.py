"""Mutations are limited per user a minute; queries, other users and the next minute are not."""

from __future__ import annotations

import pytest

from app.ratelimit import RateLimiter


async def test_a_user_over_the_limit_is_told_to_wait(server, anonymous):
    alice, bob = await anonymous.login("alice"), await anonymous.login("bob")
    now = [600.0]
    saved = server.services.limiter
    server.services.limiter = RateLimiter(3, clock=lambda: now[0])
    try:
        change = "mutation { referralQrCode { scene } }"
        for _ in range(3):
            await alice(change)
        error = await alice.error(change)
        assert error.code == "RATE_LIMITED"
        assert (await alice("{ me { id } }"))["me"]["id"] == alice.user_id  # queries still pass
        await bob(change)  # another user has a count of their own
        now[0] += 60  # the next minute starts afresh
        await alice(change)
    finally:
        server.services.limiter = saved


async def test_the_redis_limiter_counts_across_processes(server):
    import os

    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL, as CI gives it")
    from redis.asyncio import Redis

    from app.ratelimit import RedisRateLimiter

    client = Redis.from_url(os.environ["REDIS_URL"])
    try:
        one, two = (RedisRateLimiter(client, 2, clock=lambda: 1200.0) for _ in range(2))
        key = "user:redis-test"
        assert [await one.allow(key), await two.allow(key), await one.allow(key)] == [
            True,
            True,
            False,
        ]
    finally:
        await client.delete("rebate:rate:user:redis-test:20")
        await client.aclose()
