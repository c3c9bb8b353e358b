"""A lean HTTP/1.1 load generator on loopback: keep-alive connections, fixed requests in flight.

Written on the event loop's sockets rather than an HTTP client library so that, on a machine
with two cores shared with the server, the generator spends as little CPU per request as it can:
it only frames responses (status line, Content-Length, the Server-Timing header) and hands each
body to a check. It runs in the benchmark's own process, never in the server's.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.bench.report import Progress, percentile

Check = Callable[[int, bytes], bool]


@dataclass
class LoadResult:
    sent: int
    ok: int  # responses the check accepted
    elapsed_s: float
    # End to end: from the request's write to its answer's last byte reaching the generator's
    # socket, as the kernel stamped its arrival (Linux); elsewhere as read_ms.
    latencies_ms: list[float]
    server_ms: list[float]  # the server's own Server-Timing "app" duration, where it gave one
    # From the write to the moment the generator read the answer: also the generator's own wait
    # for a core and for its turn among the answers that came together.
    read_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # the first few refused bodies

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> dict[str, float | int | dict[str, int] | list[str]]:
        def ms(samples: list[float], fraction: float) -> float:
            return round(percentile(samples, fraction), 2) if samples else float("nan")

        return {
            "sent": self.sent,
            "ok": self.ok,
            "elapsed_s": round(self.elapsed_s, 3),
            "ok_per_s": round(self.ok_per_second, 1),
            "p50_ms": ms(self.latencies_ms, 0.50),
            "p90_ms": ms(self.latencies_ms, 0.90),
            "p99_ms": ms(self.latencies_ms, 0.99),
            "max_ms": ms(self.latencies_ms, 1.0),
            "read_p99_ms": ms(self.read_ms, 0.99),
            "server_p50_ms": ms(self.server_ms, 0.50),
            "server_p99_ms": ms(self.server_ms, 0.99),
            "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
            "failures": self.failures[:3],
        }


def http_request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """One request's bytes, framed once up front so that sending costs a single write."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Load:
    """The requests of one `fire` and what came back, shared by its connections."""

    def __init__(
        self,
        requests: Sequence[bytes],
        check: Check,
        progress: Progress | None,
        stage: str,
    ) -> None:
        self.requests = requests
        self.check = check
        self.progress = progress
        self.stage = stage
        self.next_index = 0
        self.busy = 0  # connections with a request out
        self.result = LoadResult(sent=0, ok=0, elapsed_s=0.0, latencies_ms=[], server_ms=[])
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def take(self) -> bytes | None:
        if self.next_index >= len(self.requests):
            return None
        request = self.requests[self.next_index]
        self.next_index += 1
        return request

    def answered(
        self, status: int, body: bytes, server_ms: float | None, arrived_ms: float, read_ms: float
    ) -> None:
        result = self.result
        result.sent += 1
        result.statuses[status] += 1
        result.latencies_ms.append(arrived_ms)
        result.read_ms.append(read_ms)
        if server_ms is not None:
            result.server_ms.append(server_ms)
        if self.check(status, body):
            result.ok += 1
        elif len(result.failures) < 10:
            result.failures.append(f"{status}: {body[:300]!r}")
        if self.progress is not None and result.sent % 50 == 0:
            self.progress.update(result.sent, len(self.requests), self.stage)

    def idle(self) -> None:
        self.busy -= 1
        if self.busy == 0 and not self.done.done():
            self.done.set_result(None)

    def fail(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


# Linux's SO_TIMESTAMPNS (also the type of its control message), which the socket module does
# not name: the kernel stamps each read with the arrival of the data it returns.
_SO_TIMESTAMPNS = 35 if sys.platform == "linux" else None
_STAMP_SPACE = socket.CMSG_SPACE(16) if _SO_TIMESTAMPNS is not None else 0


class _Connection:
    """One keep-alive connection: one request at a time, the response framed by Content-Length.

    Driven from the loop's readiness callback on its socket: a complete response is timed and
    the next request written at once, with no task or future per request, so that the
    generator takes as little of the machine's CPU from the server as it can. The time of an
    answer is when its last byte reached the socket, as the kernel stamped it, not when this
    process got round to reading it: on two cores shared with the server and the database, the
    generator waits for a core, and reads the answers that came together one after another.
    """

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock = sock
        self.loop = loop
        self.buffer = bytearray()
        self.load: _Load | None = None
        self.sent_ns = 0
        self.waiting = False  # a request is out and its response not read yet

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if _SO_TIMESTAMPNS is not None:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        try:
            await loop.sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        return cls(sock, loop)

    def start(self, load: _Load) -> None:
        """Take the first request of `load`, if any is left."""
        self.load = load
        self.loop.add_reader(self.sock.fileno(), self._readable)
        if self._send_next():
            load.busy += 1

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def _send_next(self) -> bool:
        assert self.load is not None
        request = self.load.take()
        if request is None:
            return False
        self.waiting = True
        self.sent_ns = time.time_ns()
        try:
            sent = self.sock.send(request)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._fail(exc)
            return True
        if sent < len(request):  # the socket's buffer was full: the rest as it drains
            self.loop.create_task(self.loop.sock_sendall(self.sock, request[sent:]))
        return True

    def _readable(self) -> None:
        try:
            data, control, _, _ = self.sock.recvmsg(65536, _STAMP_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        if not data:
            self.loop.remove_reader(self.sock.fileno())
            if self.waiting:
                self._fail(ConnectionError("the server closed the connection"))
            return
        # The last read completes the answer: its stamp is the answer's arrival.
        arrived_ns = _stamp(control) or time.time_ns()
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).split(b"\r\n")
        length = 0
        server_ms = None
        for line in head[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                self._fail(ValueError("chunked responses are not expected from this server"))
                return
            elif name == b"server-timing":
                server_ms = _app_duration(value)
        if len(self.buffer) < end + 4 + length:
            return
        read_ns = time.time_ns()
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        status = int(head[0].split(b" ", 2)[1])
        load = self.load
        if load is None or not self.waiting:
            return
        self.waiting = False
        load.answered(
            status,
            body,
            server_ms,
            (arrived_ns - self.sent_ns) / 1e6,
            (read_ns - self.sent_ns) / 1e6,
        )
        if not self._send_next():
            load.idle()

    def _fail(self, exc: Exception) -> None:
        if self.load is not None:
            self.load.fail(exc)


def _stamp(control: list[tuple[int, int, bytes]]) -> int | None:
    """The kernel's arrival time of a read, in nanoseconds since the epoch, if it gave one."""
    for level, kind, data in control:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds * 1_000_000_000 + nanoseconds
    return None


def _app_duration(value: bytes) -> float | None:
    """The `dur` of the `app` metric of a Server-Timing header, in milliseconds."""
    for metric in value.split(b","):
        parts = [part.strip() for part in metric.split(b";")]
        if parts and parts[0] == b"app":
            for part in parts[1:]:
                if part.startswith(b"dur="):
                    return float(part[4:])
    return None


def _any(status: int, body: bytes) -> bool:
    return True


async def fire(
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    check: Check,
    progress: Progress | None = None,
    stage: str = "load",
    host: str = "127.0.0.1",
    prime: bytes | None = None,
) -> LoadResult:
    """Send every request once, `concurrency` at a time, each connection reused for the next.

    With `prime`, each connection first sends that request and has its answer before the clock
    starts. A connection the kernel has opened is not yet one the server has accepted: the
    server takes it up between other work, so without a prime the first requests also wait
    for the server to accept (and, with several server processes, to win) their connections.
    """
    total = len(requests)
    connections: list[_Connection] = []
    try:
        for _ in range(min(concurrency, total)):
            connections.append(await _Connection.open(host, port))
        if prime is not None:
            await _drive(_Load([prime] * len(connections), _any, None, ""), connections)
        load = _Load(requests, check, progress, stage)
        started = time.perf_counter()
        try:
            await _drive(load, connections)
        finally:
            load.result.elapsed_s = time.perf_counter() - started
    finally:
        for connection in connections:
            connection.close()
    if progress is not None:
        progress.update(total, total, stage)
    return load.result


async def _drive(load: _Load, connections: list[_Connection]) -> None:
    """Until every request of `load` is answered over `connections`."""
    for connection in connections:
        connection.start(load)
    if load.busy:
        await load.done


class CpuMeter:
    """CPU seconds spent by the server's processes, its PostgreSQL backends and this process.

    Read from /proc (Linux); elsewhere there are no figures. `machine_busy_cores` is the whole
    machine's, other people's work included: on a shared machine it says how much was left.
    `machine_stolen_cores`, part of it, is the time a virtual machine's cores were ready to run
    while its host ran another machine: a stall that no process here caused. `machine_iowait_cores`
    is idle time while a disk was awaited (a slow flush of the commits' log shows there).
    """

    def __init__(self, server_pid: int, database_url: str) -> None:
        self.server_pid = server_pid
        self.database_url = database_url
        self._start: dict[str, float] = {}
        self._started_at = 0.0

    async def start(self) -> None:
        self._start = await self._snapshot()
        self._started_at = time.perf_counter()

    async def stop(self, requests: int) -> dict[str, float]:
        seconds = time.perf_counter() - self._started_at
        end = await self._snapshot()
        if not self._start or not end or requests <= 0 or seconds <= 0:
            return {}
        spent = {"postgres": 0.0}
        for name, value in end.items():
            if name.startswith("pg:"):
                # A backend that started during the run spent all its time in it.
                spent["postgres"] += value - self._start.get(name, 0.0)
            else:
                spent[name] = value - self._start[name]
        figures = {
            f"{name}_cpu_ms_per_request": round(spent[name] / requests * 1000.0, 3)
            for name in ("server", "postgres", "load_generator")
        }
        figures.update(
            {
                f"{name}_cores": round(spent[name] / seconds, 2)
                for name in (
                    "server",
                    "postgres",
                    "load_generator",
                    "machine_busy",
                    "machine_stolen",
                    "machine_iowait",
                )
            }
        )
        return figures

    async def _snapshot(self) -> dict[str, float]:
        try:
            backends = await _backend_pids(self.database_url)
            snapshot = {
                "server": sum(_cpu_seconds(pid) for pid in _tree(self.server_pid)),
                "load_generator": _cpu_seconds(os.getpid()),
                **_machine_seconds(),
            }
        except OSError:
            return {}
        snapshot.update({f"pg:{pid}": _cpu_seconds(pid) for pid in backends})
        return snapshot


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces and parentheses: the fields start after the last ")".
        return stat.read().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int) -> float:
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(_stat_fields(int(entry))[1])
            except OSError:
                continue
    found = [root]
    for pid in found:
        found += [child for child, parent in parents.items() if parent == pid]
    return found


def machine_busy_seconds() -> float:
    return _machine_seconds()["machine_busy"]


def _machine_seconds() -> dict[str, float]:
    """The whole machine's CPU seconds since boot: busy (not idle), of those stolen (its
    virtual cores ready to run while the host ran something else), and idle while a disk
    write or read was awaited (iowait)."""
    with open("/proc/stat") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    return {
        "machine_busy": (sum(values) - values[3] - values[4]) / _TICK,
        "machine_stolen": (values[7] if len(values) > 7 else 0) / _TICK,
        "machine_iowait": values[4] / _TICK,
    }


async def _backend_pids(database_url: str) -> list[int]:
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    return [int(row["pid"]) for row in rows]


async def fire_metered(
    port: int,
    requests: Sequence[bytes],
    *,
    server_pid: int,
    database_url: str,
    **load: Any,
) -> tuple[LoadResult, dict[str, float]]:
    """`fire`, with the CPU the server, PostgreSQL and the load generator spent per request."""
    meter = CpuMeter(server_pid, database_url)
    await meter.start()
    result = await fire(port, requests, **load)
    return result, await meter.stop(result.sent)
