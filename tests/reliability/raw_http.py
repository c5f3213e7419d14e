"""HTTP/1.1 over bare sockets, for tests where the client misbehaves on purpose: it sends
nothing, drips bytes, stalls mid-body or holds connections open. Replies are parsed with h11, so
the tests check what a real client would read."""

from __future__ import annotations

import json
import selectors
import socket
import time
from dataclasses import dataclass
from typing import Any

import h11


@dataclass
class Reply:
    """One response as read off the socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        """The OpenAI error object of an error reply."""
        error: dict[str, Any] = json.loads(self.body)["error"]
        return error


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    """A connected socket to the server on loopback."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def head(method: str, path: str, extra: str = "") -> bytes:
    """A request line and headers, ending the header block."""
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode("latin-1")


def json_request(path: str, body: dict[str, Any], extra: str = "") -> bytes:
    """A whole POST request with a JSON body."""
    payload = json.dumps(body).encode()
    headers = f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n{extra}"
    return head("POST", path, headers) + payload


def read_reply(sock: socket.socket) -> Reply | None:
    """The next response on the connection, or None if it closed without one."""
    parser = h11.Connection(our_role=h11.CLIENT)
    parser.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))  # any request
    parser.send(h11.EndOfMessage())
    status, headers, body = 0, {}, b""
    while True:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            try:
                parser.receive_data(sock.recv(65536))
            except ConnectionResetError:
                parser.receive_data(b"")
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode().lower(): v.decode() for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return Reply(status, headers, body)
        elif isinstance(event, h11.ConnectionClosed):
            return None


def closed(sock: socket.socket, within: float) -> bool:
    """Whether the server closes the connection within ``within`` seconds (anything it sends
    first is read and dropped)."""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


def wait_all_closed(socks: list[socket.socket], within: float) -> tuple[int, bytes]:
    """Wait until the server closed every socket, up to ``within`` seconds; how many are still
    open, and every byte the server sent on any of them."""
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    still_open = len(socks)
    received = b""
    deadline = time.monotonic() + within
    while still_open and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.1):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            received += chunk
            if not chunk:
                selector.unregister(sock)
                still_open -= 1
    selector.close()
    return still_open, received
