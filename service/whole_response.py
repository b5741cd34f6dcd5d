"""Gunicorn responses whose status line and headers leave in one write with the body.

Gunicorn writes a response's headers and its first body bytes in two system calls.
If a replica dies between the two (a SIGKILL, an OOM kill), NGINX has already sent
the headers on to the client and can no longer retry the request on another
replica: the client gets a cut-off body. Holding the headers back until the first
body bytes (or the end of the response) closes that window, so a killed replica
either answered whole or sent nothing NGINX cannot retry.

Installed by ``service/gunicorn_conf.py``; process plumbing, no business logic.
"""

from __future__ import annotations

from gunicorn import util
from gunicorn.http import wsgi


class _Collect:
    """A socket stand-in that keeps what would have been sent."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.parts.append(data)


class WholeResponse(wsgi.Response):
    """``wsgi.Response`` with the header block sent together with the first body bytes."""

    _held: bytes = b""

    def send_headers(self) -> None:
        if self.headers_sent:
            return
        collect, sock = _Collect(), self.sock
        self.sock = collect
        try:
            super().send_headers()
        finally:
            self.sock = sock
        self._held = b"".join(collect.parts)

    def _emit_body(self, data: bytes) -> None:
        if not self._held:
            super()._emit_body(data)
            return
        collect = _Collect()
        util.write(collect, data, self.chunked)  # frames a chunk when chunked
        held, self._held = self._held, b""
        self.sock.sendall(held + b"".join(collect.parts))

    def close(self) -> None:
        self.send_headers()
        if self._held:  # a response with no body bytes at all
            held, self._held = self._held, b""
            self.sock.sendall(held)
        super().close()

    def sendfile(self, respiter) -> bool:
        return False  # the plain write path keeps headers and body together


def install() -> None:
    """Make Gunicorn build every HTTP/1 response as a ``WholeResponse``."""
    wsgi.Response = WholeResponse
