"""In production the API answers queries but neither introspection nor GraphiQL."""

from __future__ import annotations

import httpx

from app.config import Settings
from app.main import create_app


async def test_production_refuses_introspection_and_graphiql(tmp_path):
    settings = Settings(
        app_env="production",
        database_url=f"sqlite://{tmp_path / 'p.sqlite3'}",
        secret_key="a-production-secret-key-of-32-bytes!",
        admin_token="a-production-admin-token",
        wechat_fake=False,
        wechat_app_id="wx1234567890abcdef",
        wechat_app_secret="secret",
        wechat_mch_id="1900000109",
        wechat_pay_api_key="K" * 32,
    )
    app = create_app(settings, public_base_url="https://shop.example.invalid/")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t/"
    ) as http:
        body = (
            await http.post("graphql", json={"query": "{ __schema { types { name } } }"})
        ).json()
        assert body["errors"]
        page = await http.get("graphql", headers={"Accept": "text/html"})
        assert "graphiql" not in page.text.lower()
    assert not [route for route in app.routes if getattr(route, "path", "") == "/mock"]
