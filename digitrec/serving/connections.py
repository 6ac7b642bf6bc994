"""Connections that cannot lock the server out: uvicorn's HTTP/1.1 protocol (h11) with a deadline
for a request's headers and a bound on open connections.

uvicorn closes idle keep-alive connections but waits forever for a request's headers, and accepts
connections until the process runs out of file descriptors (then asyncio logs a traceback per
accept). Here every connection must deliver a request's headers within `header_timeout` seconds
of opening (and of finishing its previous response), or it is aborted; past `max_connections`
open at once a new connection is aborted at once, which costs no request and logs nothing. A
slow body is the app's (digitrec.serving.uploads: --upload-timeout, 408). Put a reverse proxy in
front when exposing the server (docs/how-to/serving.md).
"""

from __future__ import annotations

import resource

from uvicorn.protocols.http.h11_impl import H11Protocol


def default_max_connections(reserve: int = 64) -> int:
    """Open connections allowed: what this process's descriptor limit leaves after `reserve`
    (files, the model, the pool), at most 1024."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(8, min(1024, soft - reserve))


def guarded_protocol(header_timeout: float, max_connections: int) -> type[H11Protocol]:
    """An H11Protocol subclass enforcing the header deadline and the connection bound."""

    class GuardedH11Protocol(H11Protocol):
        _header_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.abort()  # refused cheaply: no request read, nothing logged
                return
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.abort()

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and self._header_timer is not None:
                self._disarm()  # a request's headers are in: the app times its body

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's headers get the same deadline

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedH11Protocol
