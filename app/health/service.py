"""The scheme's real economics per queue (SPEC §18): what is owed, what came in, what went back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from app.catalog.models import Product
from app.catalog.service import product_rule
from app.money import BP_SCALE
from app.rebate import rules
from app.rebate.figures import INFLOW_DAYS
from app.rebate.models import Queue, QueueDay
from app.rebate.settings import RebateSettings


@dataclass(frozen=True, slots=True)
class QueueHealth:
    queue_key: str
    waiting_entries: int
    liability_fen: int
    returned_fen: int
    inflow_per_day_fen: int
    payout_per_day_fen: int
    repaid_fraction_bp: int | None
    estimated_wait_days_for_new_entry: float | None


def repaid_fraction_bp(extraction_bp: int, reward_bp: int) -> int | None:
    """In the long run a queue of equal orders repays only e/r of its entitlements (SPEC §18)."""
    if reward_bp == 0:
        return None
    return min(BP_SCALE, extraction_bp * BP_SCALE // reward_bp)


async def _configured_ratios(queue_key: str, settings: RebateSettings) -> tuple[int, int]:
    """The extraction and fixed reward ratios a plain new line of this queue would get."""
    if queue_key.startswith("product:"):
        product = await Product.filter(id=int(queue_key.split(":", 1)[1])).first()
        if product is not None:
            rule = product_rule(product)
            return (
                rules.resolve_extraction([rule], settings),
                rule.ratio_bp if rule.ratio_bp is not None else settings.default_reward_ratio_bp,
            )
    return settings.extraction_ratio_bp, settings.default_reward_ratio_bp


async def queue_health(
    settings: RebateSettings, *, today: date, queue_key: str | None = None
) -> list[QueueHealth]:
    queues = Queue.all().order_by("key")
    if queue_key is not None:
        queues = queues.filter(key=queue_key)
    since = today - timedelta(days=INFLOW_DAYS - 1)
    answer = []
    for queue in await queues:
        days = (
            await QueueDay.filter(queue_id=queue.id)
            .order_by("day")
            .values_list("day", "contributed_fen", "paid_out_fen")
        )
        recent = [(day, c, p) for day, c, p in days if since <= day <= today]
        span = (today - max(since, days[0][0])).days + 1 if days else 1
        inflow = sum(c for _, c, _ in recent) / span if recent else 0.0
        payout = sum(p for _, _, p in recent) / span if recent else 0.0
        extraction_bp, reward_bp = await _configured_ratios(queue.key, settings)
        answer.append(
            QueueHealth(
                queue_key=queue.key,
                waiting_entries=queue.waiting_count,
                liability_fen=queue.liability_fen,
                returned_fen=queue.returned_fen,
                inflow_per_day_fen=int(inflow),
                payout_per_day_fen=int(payout),
                repaid_fraction_bp=repaid_fraction_bp(extraction_bp, reward_bp),
                estimated_wait_days_for_new_entry=(
                    round(queue.liability_fen / inflow, 2) if inflow > 0 else None
                ),
            )
        )
    return answer
