"""The benchmarks' load generator: every request sent once, answers framed and counted."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import threading
import time

import pytest

from app.bench.loadgen import LoadResult, fire, http_request


class _Server(asyncio.Protocol):
    """Answers each request after a short while, its head and body in separate writes."""

    received: list[bytes]
    in_flight = 0
    most_in_flight = 0
    close_after: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
            if len(rest) < length:
                return
            body, self.buffer = rest[:length], rest[length:]
            type(self).received.append(body)
            if self.close_after is not None and len(type(self).received) > self.close_after:
                self.transport.close()
                return
            type(self).in_flight += 1
            type(self).most_in_flight = max(type(self).most_in_flight, type(self).in_flight)
            asyncio.get_running_loop().create_task(self._answer(body))

    async def _answer(self, body: bytes) -> None:
        await asyncio.sleep(0.001)
        status = b"200 OK" if not body.endswith(b"7") else b"409 Conflict"
        answer = b"echo:" + body
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\nServer-Timing: db;dur=9, app;dur=1.5\r\n"
            b"Content-Length: " + str(len(answer)).encode() + b"\r\n\r\n"
        )
        await asyncio.sleep(0)
        type(self).in_flight -= 1
        self.transport.write(answer)


async def _serve(close_after: int | None = None) -> tuple[asyncio.AbstractServer, type[_Server]]:
    server_type = type("Server", (_Server,), {"received": [], "close_after": close_after})
    server = await asyncio.get_running_loop().create_server(server_type, "127.0.0.1", 0)
    return server, server_type


def _ok(status: int, body: bytes) -> bool:
    return status == 200 and body.startswith(b"echo:")


async def test_every_request_is_sent_once_and_its_answer_counted() -> None:
    server, seen = await _serve()
    port = server.sockets[0].getsockname()[1]
    requests = [http_request("POST", "/x", f"request {i}".encode()) for i in range(57)]
    try:
        result = await fire(port, requests, concurrency=5, check=_ok)
    finally:
        server.close()
    assert sorted(seen.received) == sorted(f"request {i}".encode() for i in range(57))
    assert seen.most_in_flight <= 5
    assert result.sent == 57
    refused = [i for i in range(57) if str(i).endswith("7")]  # 7, 17, 27, 37 and 47
    assert result.ok == 57 - len(refused)
    assert result.statuses == {200: 57 - len(refused), 409: len(refused)}
    assert len(result.latencies_ms) == 57 and min(result.latencies_ms) >= 1.0
    pairs = zip(result.read_ms, result.latencies_ms, strict=True)
    assert all(read >= arrived for read, arrived in pairs)
    assert result.server_ms == [1.5] * 57
    assert result.failures[0].startswith("409: b'echo:request ")


async def test_more_connections_than_requests_and_none_at_all() -> None:
    server, seen = await _serve()
    port = server.sockets[0].getsockname()[1]
    try:
        few = await fire(port, [http_request("GET", "/", b"one")], concurrency=8, check=_ok)
        none = await fire(port, [], concurrency=8, check=_ok)
    finally:
        server.close()
    assert (few.sent, few.ok, seen.received) == (1, 1, [b"one"])
    assert (none.sent, none.ok) == (0, 0)


async def test_a_connection_closed_before_its_answer_fails_the_load() -> None:
    server, _ = await _serve(close_after=3)
    port = server.sockets[0].getsockname()[1]
    requests = [http_request("POST", "/x", f"r{i}".encode()) for i in range(10)]
    try:
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(fire(port, requests, concurrency=2, check=_ok), 10)
    finally:
        server.close()


async def test_a_prime_has_every_connection_taken_up_before_the_clock_starts() -> None:
    """A server that takes up its connections 200 ms after the kernel opened them: without a
    prime the first answers carry that wait; with one they do not, and the primes, one per
    connection and all answered before the first request, are neither counted nor timed."""
    requests = [http_request("POST", "/x", f"r{i}".encode()) for i in range(9)]
    cold, _ = await _fire_at_a_late_server(requests, prime=None)
    primed, received = await _fire_at_a_late_server(
        requests, prime=http_request("GET", "/ready", b"prime")
    )
    # The test server refuses r7; the primes' answers, all 200, are not counted.
    assert (cold.sent, cold.ok, primed.sent, primed.ok) == (9, 8, 9, 8)
    assert received[:3] == [b"prime"] * 3
    assert sorted(received[3:]) == sorted(f"r{i}".encode() for i in range(9))
    assert max(cold.read_ms) >= 150
    assert max(primed.read_ms) < 100


async def _fire_at_a_late_server(
    requests: list[bytes], prime: bytes | None
) -> tuple[LoadResult, list[bytes]]:
    """`fire` over 3 connections at a server that accepts them only after 200 ms."""
    listener = socket.create_server(("127.0.0.1", 0))
    server_type = type("Server", (_Server,), {"received": [], "close_after": None})
    loop = asyncio.get_running_loop()
    servers: list[asyncio.AbstractServer] = []

    async def take_up() -> None:
        servers.append(await loop.create_server(server_type, sock=listener))

    late = loop.call_later(0.2, lambda: loop.create_task(take_up()))
    try:
        port = listener.getsockname()[1]
        result = await fire(port, requests, concurrency=3, check=_ok, prime=prime)
    finally:
        late.cancel()
        for server in servers:
            server.close()
        listener.close()
    return result, server_type.received


@pytest.mark.skipif(sys.platform != "linux", reason="the kernel's arrival stamps are Linux's")
async def test_an_answer_is_timed_at_its_arrival_not_when_the_generator_reads_it() -> None:
    """The generator's own stall (here: its loop held for 200 ms while the answer came) is not
    counted as the server's time."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    loop = asyncio.get_running_loop()

    def answer_while_the_generator_stalls() -> None:
        with listener, listener.accept()[0] as conn:
            conn.recv(65536)
            loop.call_soon_threadsafe(time.sleep, 0.2)
            time.sleep(0.02)  # the generator's loop is held by now
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    server = threading.Thread(target=answer_while_the_generator_stalls)
    server.start()
    result = await fire(port, [http_request("GET", "/")], concurrency=1, check=_ok_status)
    server.join()
    assert result.ok == 1
    assert result.read_ms[0] >= 200
    assert result.latencies_ms[0] < 100


def _ok_status(status: int, body: bytes) -> bool:
    return status == 200 and body == b"ok"
