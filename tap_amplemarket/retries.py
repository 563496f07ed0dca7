"""One retry loop for every fault of one request, so that each kind of fault is bounded.

The SDK's backoff decorator counts every fault alike. Amplemarket's 429 carries its own wait
(Retry-After), which must slow every worker sharing the key and must not use up the attempts
meant for 5xx; stacking a second backoff loop for it made the two reset each other's count.
"""

from __future__ import annotations

import dataclasses
import time
import typing as t

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_amplemarket.errors import RateLimitedError, RateLimitedTooLongError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tap_amplemarket.throttle import PacedLimiter

#: What is worth another attempt: server faults, broken bodies, resets, timeouts.
RETRIABLE: tuple[type[Exception], ...] = (
    RetriableAPIError,
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
#: The longest the tap waits on 429s for one request, in one Retry-After or in all of them.
#: Beyond it the run ends with one line; the next scheduled run resumes from its last STATE.
MAX_RATE_LIMIT_WAIT_SECONDS = 600.0


@dataclasses.dataclass
class RetryPolicy:
    """How one request is retried.

    - a 429 with a positive Retry-After: every request sharing `limiter` pauses that long,
      not counted as an attempt, up to MAX_RATE_LIMIT_WAIT_SECONDS in all (asked for, or
      spent since the first 429);
    - anything else retriable (including a 429 whose Retry-After is missing, zero or
      negative): counted, backed off by `waits`, at most `max_attempts` attempts;
    - when `give_up_after(failure)` says a number of seconds, no retry starts whose wait
      would end later than that after the first attempt (an api_url that has not answered yet must
      fail in seconds, not minutes).
    """

    limiter: PacedLimiter
    max_attempts: int
    waits: Callable[[], Iterator[float]]
    on_retry: Callable[[str, float, int, Exception], None]
    retriable: tuple[type[Exception], ...] = RETRIABLE
    max_rate_limit_wait: float = dataclasses.field(
        default_factory=lambda: MAX_RATE_LIMIT_WAIT_SECONDS
    )
    give_up_after: Callable[[Exception], float | None] = lambda failure: None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def call(self, send: Callable[[], requests.Response], where: str) -> requests.Response:
        """The response of `send()`, retried by this policy; the last failure if it gives up."""
        attempts = 0  # counted against max_attempts
        tries = 0  # every one, for the log
        rate_limited_for = 0.0
        first_rate_limited: float | None = None
        waits: Iterator[float] | None = None
        started = self.clock()
        while True:
            tries += 1
            self.limiter.acquire()
            try:
                return send()
            except RateLimitedError as exc:
                wait = exc.retry_after
                if wait is not None and wait > 0:
                    rate_limited_for += wait
                    now = self.clock()
                    first_rate_limited = first_rate_limited or now
                    # Both what the API asked for and the time it took (a Retry-After of a
                    # millisecond, each time, would otherwise never add up).
                    if max(wait, rate_limited_for, now - first_rate_limited) > (
                        self.max_rate_limit_wait
                    ):
                        raise RateLimitedTooLongError(
                            f"Amplemarket rate-limited {where} for longer than "
                            f"{self.max_rate_limit_wait:g}s (Retry-After {wait:g}s): stopping; "
                            "the next run resumes from the last checkpoint (lower "
                            "max_requests_per_minute if this repeats)"
                        ) from None
                    self.on_retry(where, wait, tries, exc)
                    self.limiter.pause_for(wait)
                    continue
                failure: Exception = exc
            except self.retriable as exc:
                failure = exc
            attempts += 1
            if attempts >= self.max_attempts:
                raise failure
            if waits is None:
                waits = self.waits()
            wait = next(waits)
            budget = self.give_up_after(failure)
            if budget is not None and self.clock() - started + wait > budget:
                raise failure
            self.on_retry(where, wait, tries, failure)
            self.sleep(wait)
