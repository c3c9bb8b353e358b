"""The operator's view of each queue's economics (SPEC §18)."""

from __future__ import annotations

from tests.support.client import buy, create_product, pay_and_settle

STATS = """query($key: String) { queueStats(queueKey: $key) {
  queueKey waitingEntries liabilityFen returnedFen inflowPerDayFen payoutPerDayFen
  repaidFractionBp estimatedWaitDaysForNewEntry } }"""


async def test_queue_stats_after_the_worked_example(anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    for code in "abcd":
        buyer = await anonymous.login(code)
        await pay_and_settle(buyer, await buy(buyer, product))
    [mall] = (await admin(STATS, key="mall"))["queueStats"]
    # Four contributions of 10920 today: A took 21840, B 10920, A's own 10920 went back.
    # Waiting: B (10920 left), C and D (21840 each).
    assert mall == {
        "queueKey": "mall",
        "waitingEntries": 3,
        "liabilityFen": 10920 + 21840 + 21840,
        "returnedFen": 10920,
        "inflowPerDayFen": 4 * 10920,
        "payoutPerDayFen": 3 * 10920,
        "repaidFractionBp": 5000,  # 65% / 130%: half of all entitlements, in the long run
        "estimatedWaitDaysForNewEntry": 1.25,  # 54600 owed / 43680 a day
    }
    assert (await admin(STATS, key="nope"))["queueStats"] == []
    consumer = await anonymous.login("x")
    assert (await consumer.error(STATS)).code == "FORBIDDEN"
