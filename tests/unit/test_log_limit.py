"""Issue 30: the server's logs are rate-limited (digitrec.serving.log_limit)."""

import logging

from digitrec.serving.log_limit import RateLimit, limit_logs


def _record(i: int) -> logging.LogRecord:
    return logging.LogRecord(
        "uvicorn.error", logging.ERROR, __file__, 1, "accept failed %d", (i,), None
    )


def test_a_flood_is_cut_to_the_burst_then_the_rate_and_the_drop_is_counted():
    now = [0.0]
    limit = RateLimit(rate=2.0, burst=5, clock=lambda: now[0])
    passed = [limit.filter(_record(i)) for i in range(1000)]  # 1,000 at one instant
    assert sum(passed) == 5 and passed[:5] == [True] * 5
    now[0] += 1.0  # one second later: two more tokens
    first, second, third = (_record(i) for i in (1000, 1001, 1002))
    assert limit.filter(first) and limit.filter(second) and not limit.filter(third)
    assert (
        first.getMessage() == "accept failed 1000 [995 more log records dropped by the rate limit]"
    )
    assert second.getMessage() == "accept failed 1001"


def test_limits_are_put_on_each_logger_once():
    name = "digitrec.tests.log_limit"
    logger = logging.getLogger(name)
    try:
        limit_logs([name])
        limit_logs([name])
        assert sum(isinstance(f, RateLimit) for f in logger.filters) == 1
    finally:
        for f in list(logger.filters):
            logger.removeFilter(f)
