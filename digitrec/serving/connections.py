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

import os
import resource

from uvicorn.protocols.http.h11_impl import H11Protocol


def fd_limit() -> int | None:
    """This process's soft limit on open descriptors (None: unlimited)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def accept_backlog(wanted: int = 128) -> int:
    """The listen backlog, which is also how many connections asyncio accepts in one go before
    the bound can close any: at most 1/16 of the descriptor limit (at least 16)."""
    soft = fd_limit()
    return wanted if soft is None else max(16, min(wanted, soft // 16))


def default_max_connections(backlog: int = 128, reserve: int = 32) -> int:
    """Open connections allowed: what this process's descriptor limit leaves after the
    descriptors open now, a few accept bursts (asyncio accepts up to `backlog` at a time, and
    again before the first ones are closed) and `reserve` more (files, the pool); at least 8, at
    most 1024."""
    soft = fd_limit()
    if soft is None:
        return 1024
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: assume a typical count
        used = 64
    return max(8, min(1024, soft - used - 4 * backlog - reserve))


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
