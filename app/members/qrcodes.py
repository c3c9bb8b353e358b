"""Mini-program codes (getwxacodeunlimit): referral, merchant invite, store cashier (§14, §15)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from app.wechat.client import WeChatGateway

# The pages of the mini-program each code opens; the scene tells the page what was scanned.
REFERRAL_PAGE = "pages/index/index"
MERCHANT_INVITE_PAGE = "pages/merchant/apply"
CASHIER_PAGE = "pages/cashier/pay"


@dataclass(frozen=True, slots=True)
class QrCodeImage:
    scene: str
    page: str
    image_base64: str


def referral_scene(referrer_code: str) -> str:
    return f"r={referrer_code}"


def merchant_invite_scene(referrer_code: str) -> str:
    return f"m={referrer_code}"


def parse_scene(scene: str) -> tuple[str, str] | None:
    """("referral" | "merchant" | "cashier", value) of a scanned scene, None when unknown."""
    kinds = {"r": "referral", "m": "merchant"}
    key, _, value = scene.partition("=")
    if value and key in kinds:
        return kinds[key], value
    if scene.startswith("cashier_"):
        return "cashier", scene
    return None


async def mini_program_code(gateway: WeChatGateway, scene: str, page: str) -> QrCodeImage:
    png = await gateway.wxa_code_unlimited(scene, page=page)
    return QrCodeImage(scene=scene, page=page, image_base64=base64.b64encode(png).decode())
