"""The fake WeChat served for real on 127.0.0.1, with a notification receiver beside it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from app.config import Settings
from app.wechat.credentials import WeChatCredentials, resolve_credentials
from app.wechat.pay_notify import InvalidNotification, parse_v2_payment_notification, reply_xml
from miniprogram_mock.fake_wechat import FakeWeChatState, create_fake_wechat

STARTUP_WAIT_SECONDS = 20.0


@dataclass
class FakeServer:
    base_url: str
    creds: WeChatCredentials
    fake: FakeWeChatState
    # What the receiver at notify_url got: the parsed notice or the reason it was refused.
    received: list[Any] = field(default_factory=list)


@pytest.fixture(scope="session")
def fake_settings() -> Settings:
    return Settings(app_env="test", wechat_fake=True)


@pytest.fixture(scope="session")
def fake_server(fake_settings: Settings) -> Iterator[FakeServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    creds = resolve_credentials(fake_settings, base_url)
    fake_app = create_fake_wechat(creds)
    server_info = FakeServer(base_url=base_url, creds=creds, fake=fake_app.state.wechat)

    async def notify(request: Request) -> Response:
        try:
            notice = parse_v2_payment_notification(await request.body(), creds)
        except InvalidNotification as exc:
            server_info.received.append(exc)
            return Response(reply_xml(False, exc.reason), media_type="text/xml")
        server_info.received.append(notice)
        return Response(reply_xml(True), media_type="text/xml")

    app = Starlette(
        routes=[Mount("/mock", app=fake_app), Route("/wechat/pay/notify", notify, methods=["POST"])]
    )
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_WAIT_SECONDS
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError("the fake WeChat server did not start")
    try:
        yield server_info
    finally:
        server.should_exit = True
        thread.join(STARTUP_WAIT_SECONDS)
        sock.close()
