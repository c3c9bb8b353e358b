"""Which WeChat subscribe-message template each event uses, and how its fields are filled."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from tortoise.backends.base.client import BaseDBAsyncClient

from app.errors import BadInput
from app.notifications.models import NotificationEvent
from app.rebate.settings import validated


class TemplateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(min_length=1, max_length=64)
    page: str | None = Field(default=None, max_length=128)
    # WeChat's data key ("amount1", "thing2") → the notification's variable ("amountYuan").
    fields: dict[str, str] = {}


class NotificationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    templates: dict[NotificationEvent, TemplateConfig] = {}


async def load_notification_settings(conn: BaseDBAsyncClient | None = None) -> NotificationSettings:
    from app.rebate.models import PluginSettings

    query = PluginSettings.filter(key="notifications")
    if conn is not None:
        query = query.using_db(conn)
    row = await query.first()
    return NotificationSettings.model_validate(row.data) if row else NotificationSettings()


async def replace_templates(templates: list[dict[str, Any]]) -> NotificationSettings:
    """Set the template of each listed event; events not listed have none (nothing is sent)."""
    from tortoise.transactions import in_transaction

    from app.rebate.models import PluginSettings

    by_event: dict[str, Any] = {}
    for index, item in enumerate(templates):
        event = item.get("event")
        if event in by_event:
            raise BadInput(f"templates[{index}]: event {event} is listed twice", field="templates")
        by_event[event] = {k: v for k, v in item.items() if k != "event"}
    new = validated(NotificationSettings, {"templates": by_event}, "templates")
    async with in_transaction() as conn:
        data = new.model_dump(mode="json")
        if not await PluginSettings.filter(key="notifications").using_db(conn).update(data=data):
            await PluginSettings.create(key="notifications", data=data, using_db=conn)
    return new


def template_data(config: TemplateConfig, payload: dict[str, Any]) -> dict[str, dict[str, str]]:
    """WeChat's `data` for one message: each field's value from the payload, amounts in yuan."""
    variables = dict(payload)
    for name, value in payload.items():
        if name.endswith("Fen") and isinstance(value, int):
            variables[name.removesuffix("Fen") + "Yuan"] = f"{value // 100}.{value % 100:02d}"
    # WeChat caps a "thing" value at 20 characters; longer values are refused, not cut.
    return {
        key: {"value": str(variables.get(source, ""))[:20]} for key, source in config.fields.items()
    }
