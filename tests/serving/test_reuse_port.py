"""`rebate serve --workers N` gives each process its own socket of the port, and the kernel
spreads connections opened together over all of them (app/serving.py)."""

from __future__ import annotations

import select
import socket

from app.serving import listening_socket
from tests.support.server import free_port


def test_connections_opened_together_reach_every_process_socket():
    port = free_port()
    listeners = [listening_socket("127.0.0.1", port) for _ in range(2)]
    clients = []
    try:
        for _ in range(32):
            client = socket.create_connection(("127.0.0.1", port))
            clients.append(client)
        accepted = [0, 0]
        while sum(accepted) < len(clients):
            ready, _, _ = select.select(listeners, [], [], 5)
            assert ready, "a connection was not offered to any socket"
            for sock in ready:
                connection, _ = sock.accept()
                connection.close()
                accepted[listeners.index(sock)] += 1
        # All 32 on one socket would happen by chance once in two billion runs.
        assert min(accepted) > 0, accepted
        for sock in listeners:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        for sock in clients + listeners:
            sock.close()
