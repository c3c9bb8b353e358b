"""The ASGI application: GraphQL, WeChat's notifications, health, and the fake WeChat in dev."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from strawberry.asgi import GraphQL
from strawberry.types import ExecutionResult

from app.config import Settings, get_settings
from app.db import close_db, init_db, migrate_db
from app.orders.service import PaymentRecorder, record_refund_notice
from app.ratelimit import RateLimiter, RedisRateLimiter
from app.rebate.figure_cache import InMemoryFigureCache, RedisFigureCache
from app.rebate.figures import use_figure_cache
from app.wechat.client import WeChatGateway
from app.wechat.credentials import WeChatCredentials, resolve_credentials
from app.wechat.http import XmlPostDoor, refund_notify_endpoint, v3_notify_endpoint
from app.wechat.pay_notify import (
    InvalidNotification,
    PaymentNotice,
    parse_v2_payment_notification,
    reply_xml,
)
from graphql_schema.context import Context
from graphql_schema.page_cache import pages
from graphql_schema.schema import build_schema, schema
from workers.runtime import ArqJobs, InProcessJobs

log = logging.getLogger("rebate")


@dataclass
class Services:
    credentials: WeChatCredentials
    wechat: WeChatGateway
    jobs: InProcessJobs | ArqJobs
    redis: Any = None  # the arq pool (a redis.asyncio client) when REDIS_URL is set
    # Lottery draws and random-return seats; a test may put a seeded generator here.
    rng: random.Random = field(default_factory=secrets.SystemRandom)
    limiter: RateLimiter | None = None
    # Payment notifications that arrive together are recorded in one transaction.
    payments: PaymentRecorder = field(default_factory=PaymentRecorder)


class RebateGraphQL(GraphQL):
    def __init__(self, settings: Settings, services: Services) -> None:
        super().__init__(
            build_schema(introspection=False) if settings.is_production else schema,
            graphql_ide="graphiql" if not settings.is_production else None,
            allow_queries_via_get=True,
        )
        self._settings = settings
        self._services = services

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context.from_request(request, self._settings, self._services)

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        # The entries screen, polled, is answered as kept while its rows stay the same.
        data, context = kwargs["request_data"], kwargs["context"]
        try:
            reading, kept = await pages.read(
                self.schema._schema, data.query, data.variables, data.operation_name, context
            )
        except Exception:  # the usual way answers, and reports what went wrong as it does
            log.exception("reading a kept entries page failed")
            reading, kept = None, None
        if kept is not None:
            return kept
        if reading is not None:
            context.page_rows = (reading.arguments, reading.rows)
        result = await super().execute_single(*args, **kwargs)
        if reading is not None:
            pages.keep(reading, result)
        return result


# Set by `rebate serve --workers N` for its worker processes, which build the app by themselves.
PUBLIC_URL_VARIABLE = "REBATE_SERVE_PUBLIC_URL"


def worker_app() -> Starlette:
    """The app of one of `rebate serve --workers N`'s processes: the parent has migrated."""
    return create_app(public_base_url=os.environ[PUBLIC_URL_VARIABLE], migrate=False)


def create_app(
    settings: Settings | None = None,
    *,
    public_base_url: str = "http://127.0.0.1:8000/",
    demo: bool = False,
    migrate: bool = True,
) -> Starlette:
    settings = settings or get_settings()
    credentials = resolve_credentials(settings, public_base_url)
    services = Services(credentials, WeChatGateway(credentials), InProcessJobs())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if migrate and not settings.is_production:
            await migrate_db(settings.database_url)
        await init_db(settings.database_url)
        if settings.redis_url:
            from arq.connections import RedisSettings, create_pool

            services.redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
            services.jobs = ArqJobs(services.redis)
            use_figure_cache(RedisFigureCache(services.redis), readers_load=False)
            services.limiter = RedisRateLimiter(
                services.redis, settings.mutation_rate_limit_per_minute
            )
        else:
            use_figure_cache(InMemoryFigureCache())
            services.limiter = RateLimiter(settings.mutation_rate_limit_per_minute)
        if demo:
            from app.demo import load_demo

            await load_demo()
        interval = settings.jobs_interval_seconds or None
        await services.jobs.start(services.wechat, interval=interval)
        try:
            yield
        finally:
            await services.jobs.stop()
            if services.redis is not None:
                await services.redis.aclose()
            await close_db()

    async def accept_payment(notice: PaymentNotice) -> tuple[bool, str]:
        """The business checks of every payment notification, v2 or v3, after its signature."""
        outcome = await services.payments.record(notice)
        if not outcome.accepted:
            log.warning("payment notification %s refused: %s", notice.out_trade_no, outcome.reason)
            return False, outcome.reason
        if outcome.newly_paid and outcome.order_id is not None:
            # Scheduled, not awaited: WeChat gets its answer without waiting for settlement (§20).
            services.jobs.settle_soon(outcome.order_id)
        return True, "OK"

    async def pay_notify_answer(body: bytes) -> str:
        try:
            notice = parse_v2_payment_notification(body, credentials)
        except InvalidNotification as exc:
            log.warning("payment notification refused: %s", exc.reason)
            return reply_xml(False, exc.reason)
        accepted, reason = await accept_payment(notice)
        return reply_xml(accepted, reason)

    async def healthz(request: Request) -> Response:
        from tortoise import connections

        health: dict[str, Any] = {"ok": True, "database": "ok", "redis": None}
        try:
            await connections.get("default").execute_query("SELECT 1")
        except Exception as exc:  # health reports any failure rather than raising it
            health.update(ok=False, database=f"error: {type(exc).__name__}")
        if services.redis is not None:
            try:
                await services.redis.ping()
                health["redis"] = "ok"
            except Exception as exc:
                health.update(ok=False, redis=f"error: {type(exc).__name__}")
        return JSONResponse(health, status_code=200 if health["ok"] else 503)

    graphql_app = RebateGraphQL(settings, services)
    routes: list[Any] = [
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        Route(
            "/wechat/pay/notify/v3",
            v3_notify_endpoint(credentials, accept_payment),
            methods=["POST"],
        ),
        Route(
            "/wechat/pay/refund-notify",
            refund_notify_endpoint(credentials, record_refund_notice),
            methods=["POST"],
        ),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    if settings.fake_wechat:
        from miniprogram_mock.fake_wechat import create_fake_wechat

        routes.append(
            Mount("/mock", app=create_fake_wechat(credentials, production=settings.is_production))
        )
    # Outside production every answer says how long the application took over it, so that a load
    # test can tell the server's own time from the time its requests spent waiting.
    middleware = [] if settings.is_production else [Middleware(ServerTiming)]
    # WeChat Pay's v2 notifications, answered ahead of Starlette's routing.
    middleware.append(
        Middleware(
            XmlPostDoor,
            path="/wechat/pay/notify",
            answer=pay_notify_answer,
            too_large=reply_xml(False, "body too large"),
        )
    )
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.services = services
    app.state.settings = settings
    return app


class ServerTiming:
    """Adds `Server-Timing: app;dur=<ms>`: from the call into the app to the response's start."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000.0
                headers = [*message.get("headers", ()), (b"server-timing", b"app;dur=%.3f" % took)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed_send)
