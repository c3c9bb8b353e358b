"""What the screens show (SPEC §12): a hidden field is null, never a fake zero."""

from __future__ import annotations

from tests.support.client import buy, create_product, my_entries, pay_and_settle

UPDATE = (
    "mutation($d: DisplaySettingsInput!) { updateRebateSettings(input: {display: $d}) { paused } }"
)


async def _two_entries(anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    await pay_and_settle(a, await buy(a, product))
    await pay_and_settle(b, await buy(b, product))
    return a, b


async def test_everything_is_shown_by_default(anonymous, admin):
    a, b = await _two_entries(anonymous, admin)
    [entry_b] = await my_entries(b)
    assert (entry_b["number"], entry_b["position"], entry_b["amountAheadFen"]) == (2, 2, 10920)
    assert entry_b["estimatedWaitDays"] == 0.5  # 10920 ahead ÷ 21840 a day
    [entry_a] = await my_entries(a)
    assert entry_a["process"]["items"][0]["payerNickname"] == "B"
    display = await anonymous("{ rebateDisplay { displayName exchangeButtonName } }")
    assert display["rebateDisplay"] == {"displayName": "排队返利", "exchangeButtonName": "兑换"}


async def test_each_switch_hides_its_fields(anonymous, admin):
    a, b = await _two_entries(anonymous, admin)
    await admin(UPDATE, d={"showQueueProcess": False})
    [entry_b] = await my_entries(b)
    assert [entry_b[k] for k in ("number", "position", "amountAheadFen", "estimatedWaitDays")] == [
        None,
        None,
        None,
        None,
    ]
    assert entry_b["process"] is None
    await admin(UPDATE, d={"showQueueProcess": True, "showPendingAmount": False})
    [entry_b] = await my_entries(b)
    assert (entry_b["position"], entry_b["amountAheadFen"]) == (2, None)
    await admin(UPDATE, d={"showAccumulatedReward": False, "showPendingReward": False})
    [entry_a] = await my_entries(a)
    assert (entry_a["rewardedFen"], entry_a["remainingFen"], entry_a["progressBp"]) == (
        None,
        None,
        5000,
    )
    await admin(UPDATE, d={"showMemberInfo": False})
    [entry_a] = await my_entries(a)
    assert entry_a["process"]["items"] == [
        {
            "fromOrderId": entry_a["process"]["items"][0]["fromOrderId"],
            "amountFen": 10920,
            "payerNickname": None,
        }
    ]
