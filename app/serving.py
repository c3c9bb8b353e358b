"""`rebate serve --workers N`: N processes, each accepting on its own socket of the same port.

With one listening socket shared by the processes, the one that wakes first takes every
connection waiting (the event loop accepts until none is left): connections opened together
could all land in one process while the others idled, and the benchmark measured one of two
processes busy and half the throughput in such runs. Here each process listens on its own socket
bound to the same port with SO_REUSEPORT, and the kernel spreads new connections over them by
their addresses. A process that dies is started again on its socket.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
from typing import Any

import uvicorn

from app.startup import prepare_collector

log = logging.getLogger("rebate.serve")

# uvicorn's exit code when the app cannot start: starting again would fail the same way.
STARTUP_FAILURE = 3


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # asyncio leaves Nagle's algorithm on for sockets it did not make, so an answer written in
    # two parts would wait for the client's delayed acknowledgement (40 ms). Accepted sockets
    # inherit the option (Linux).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Server(uvicorn.Server):
    """uvicorn's server, which sets the collector for a long run (`prepare_collector`: what it
    holds frozen, a young generation that outgrows the requests in flight) once its application
    has started."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            prepare_collector()


def _serve_one(options: dict[str, Any], sock: socket.socket) -> None:
    config = uvicorn.Config("app.main:worker_app", factory=True, **options)
    Server(config).run(sockets=[sock])


def serve_processes(options: dict[str, Any], count: int) -> int:
    """Run `count` server processes until SIGINT or SIGTERM; the exit code."""
    sockets = [listening_socket(options["host"], options["port"]) for _ in range(count)]
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def start(index: int) -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_serve_one, args=(options, sockets[index]))
        process.start()
        return process

    processes = [start(index) for index in range(count)]
    code = 0
    while not stop.wait(0.5):
        for index, process in enumerate(processes):
            if process.is_alive():
                continue
            if process.exitcode == STARTUP_FAILURE:
                log.error("server process %s could not start; stopping", process.pid)
                code = STARTUP_FAILURE
                stop.set()
                break
            log.warning(
                "server process %s ended (%s); starting another", process.pid, process.exitcode
            )
            processes[index] = start(index)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=30)
    for sock in sockets:
        sock.close()
    return code
