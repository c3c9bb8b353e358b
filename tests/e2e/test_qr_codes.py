"""Mini-program codes from getwxacodeunlimit: referral, merchant invite and store cashier."""

from __future__ import annotations

import base64

from tests.support.client import Api


async def _png(code: dict) -> bytes:
    image = base64.b64decode(code["imageBase64"])
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    return image


async def test_referral_and_merchant_invite_codes_carry_the_users_code(anonymous):
    user = await anonymous.login("ref")
    own = (await user("{ me { referrerCode } }"))["me"]["referrerCode"]
    referral = (await user("mutation { referralQrCode { scene page imageBase64 } }"))[
        "referralQrCode"
    ]
    assert referral["scene"] == f"r={own}"
    assert referral["page"] == "pages/index/index"
    assert own.encode() in await _png(referral)
    invite = (await user("mutation { merchantInviteQrCode { scene page imageBase64 } }"))[
        "merchantInviteQrCode"
    ]
    assert invite["scene"] == f"m={own}"
    assert invite["page"] == "pages/merchant/apply"
    await _png(invite)
    assert (
        await anonymous.error("mutation { referralQrCode { scene } }")
    ).code == "UNAUTHENTICATED"


async def test_a_scanned_referral_scene_binds_the_new_user(anonymous):
    referrer = await anonymous.login("ref")
    scene = (await referrer("mutation { referralQrCode { scene } }"))["referralQrCode"]["scene"]
    newcomer = await anonymous.login("new", referrer_code=scene)
    assert (await newcomer("{ me { referrerId } }"))["me"]["referrerId"] == referrer.user_id


async def test_the_cashier_code_names_the_store(anonymous, admin, http):
    owner = await anonymous.login("owner")
    store = (
        await admin(
            'mutation($owner: ID) { upsertStore(input: {name: "店", ownerId: $owner}) '
            "{ id cashierQrScene } }",
            owner=owner.user_id,
        )
    )["upsertStore"]
    query = "mutation($id: ID!) { cashierQrCode(storeId: $id) { scene page imageBase64 } }"
    code = (await owner(query, id=store["id"]))["cashierQrCode"]
    assert code["scene"] == store["cashierQrScene"]
    assert code["page"] == "pages/cashier/pay"
    assert (await admin(query, id=store["id"]))["cashierQrCode"]["scene"] == code["scene"]
    stranger = await Api(http).login("stranger")
    assert (await stranger.error(query, id=store["id"])).code == "FORBIDDEN"
