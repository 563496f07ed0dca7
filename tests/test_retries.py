"""retries.py: one bounded loop for every fault of one request."""

from __future__ import annotations

import pytest
import requests

from tap_amplemarket.errors import RateLimitedError, RateLimitedTooLongError
from tap_amplemarket.retries import MAX_RATE_LIMIT_WAIT_SECONDS, RetryPolicy
from tap_amplemarket.throttle import PacedLimiter


class FakeClock:
    """Time that moves only when the code under test sleeps or waits."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


def policy(clock: FakeClock, max_attempts: int = 3) -> RetryPolicy:
    limiter = PacedLimiter(490, clock=clock, sleep=clock.sleep)  # one request per 0.12 s
    return RetryPolicy(
        limiter=limiter,
        max_attempts=max_attempts,
        waits=lambda: iter([1.0] * 100),
        on_retry=lambda *args: None,
        sleep=clock.sleep,
        clock=clock,
    )


def rate_limited(retry_after: float) -> RateLimitedError:
    return RateLimitedError(retry_after, "/calls", requests.Response())


def test_a_tiny_retry_after_every_time_is_bounded_by_the_time_it_takes():
    clock = FakeClock()
    sent = 0

    def send() -> requests.Response:
        nonlocal sent
        sent += 1
        raise rate_limited(0.001)

    with pytest.raises(RateLimitedTooLongError, match="for longer than 600s"):
        policy(clock).call(send, "GET /calls")

    # Bounded by the ten minutes it took, not by 600 s of 1 ms waits (600,000 requests).
    assert MAX_RATE_LIMIT_WAIT_SECONDS <= clock.now <= MAX_RATE_LIMIT_WAIT_SECONDS + 1
    assert sent <= MAX_RATE_LIMIT_WAIT_SECONDS / 0.12 + 2


def test_429s_then_an_answer_within_the_bound_succeed_without_using_attempts():
    clock = FakeClock()
    answers = [rate_limited(2.0)] * 10 + [requests.Response()]

    def send() -> requests.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert isinstance(policy(clock, max_attempts=1).call(send, "GET /calls"), requests.Response)
    assert answers == []
