"""Rate-limited server logs: a flood of bad clients cannot fill the disk or the terminal.

Each of the server's loggers (uvicorn's, asyncio's, digitrec's serving) lets `burst` records
through at once and `rate` a second after that (a token bucket); the first record let through
after some were dropped says how many.
"""

from __future__ import annotations

import logging
import threading
import time

LOGGERS = ("uvicorn.error", "uvicorn.access", "asyncio", "digitrec.serving.app")


class RateLimit(logging.Filter):
    """A token bucket over log records: `burst` at once, then `rate` a second."""

    def __init__(self, rate: float = 5.0, burst: int = 20, clock=time.monotonic):
        super().__init__()
        self.rate, self.burst, self.clock = float(rate), int(burst), clock
        self.tokens, self.last, self.dropped = float(burst), clock(), 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens < 1:
                self.dropped += 1
                return False
            self.tokens -= 1
            if self.dropped:
                note = f" [{self.dropped} more log records dropped by the rate limit]"
                record.msg, record.args = record.getMessage() + note, None
                self.dropped = 0
        return True


def limit_logs(names=LOGGERS, rate: float = 5.0, burst: int = 20) -> None:
    """Put one RateLimit on each named logger (once: a second call changes nothing)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimit) for f in logger.filters):
            logger.addFilter(RateLimit(rate, burst))
