"""Loopback peers for the forwarding tests: a server whose every byte the test writes
(one thread per connection), and an address where nothing listens."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable

from tests.support import free_port

Handler = Callable[[socket.socket], None]


class RawUpstream:
    """Accepts connections and runs `handle` on each in its own thread."""

    def __init__(self, handle: Handler) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self._handle = handle
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            self._handle(connection)

    def close(self) -> None:
        self.listener.close()


def read_request(connection: socket.socket) -> bytes:
    """One request, head and Content-Length body; b"" when the peer closed instead."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = connection.recv(65536)
        if not piece:
            return b""
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    while length and len(body) < int(length[1]):
        body += connection.recv(65536)
    return head


def wait_for_close(connection: socket.socket, closed: threading.Event) -> None:
    """Blocks until the proxy closes its end of the connection."""
    while connection.recv(65536):
        pass
    closed.set()


def unused_url() -> str:
    port = free_port()
    # Nothing listens there: connections are refused at once.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return f"http://127.0.0.1:{port}"
