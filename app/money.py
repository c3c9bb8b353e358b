"""Money is integer fen, ratios integer basis points; this is the only place that rounds."""

from __future__ import annotations

from typing import NewType

Fen = NewType("Fen", int)
Bp = NewType("Bp", int)

BP_SCALE = 10_000
MAX_RATIO_BP = 100_000


def apply_ratio(amount_fen: int, ratio_bp: int) -> int:
    """`amount × ratio`, rounded down (SPEC §2). Both must be non-negative integers."""
    if isinstance(amount_fen, bool) or isinstance(ratio_bp, bool):
        raise TypeError("money and ratios are integers, not booleans")
    if not isinstance(amount_fen, int) or not isinstance(ratio_bp, int):
        raise TypeError("money is integer fen and ratios integer basis points")
    if amount_fen < 0 or ratio_bp < 0:
        raise ValueError("apply_ratio takes non-negative amounts and ratios")
    return amount_fen * ratio_bp // BP_SCALE


def allocate_proportionally(total: int, weights: list[int]) -> list[int]:
    """Split `total` over `weights` in proportion, rounding down, the remainder to the last share.

    Used for deductions over order lines (SPEC §4): lines keep the order in which they were given.
    """
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("allocation takes non-negative amounts")
    if not weights:
        return []
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [0] * (len(weights) - 1) + [total]
    shares = [total * w // weight_sum for w in weights[:-1]]
    shares.append(total - sum(shares))
    return shares
