"""The client-side limiter keeps every sliding minute under max_requests_per_minute."""

from __future__ import annotations

import pytest

from tap_amplemarket.tap import TapAmplemarket
from tap_amplemarket.throttle import RequestsPerMinuteLimiter
from tests.conftest import sync


class VirtualClock:
    """Time that passes only when someone sleeps, so a minute of pacing costs nothing."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sent: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_limiter_waits_for_the_oldest_request_to_leave_the_window():
    clock = VirtualClock()
    limiter = RequestsPerMinuteLimiter(3, clock=clock.monotonic, sleep=clock.sleep)

    stamps = []
    for _ in range(7):
        limiter.acquire()
        stamps.append(clock.now)
        clock.now += 1  # each request takes a second

    assert stamps == [0, 1, 2, 60, 61, 62, 120]
    assert limiter.waited_seconds == pytest.approx(57 + 57)


def test_limiter_rejects_a_zero_quota():
    with pytest.raises(ValueError, match="at least 1"):
        RequestsPerMinuteLimiter(0)


def test_a_sync_never_sends_more_than_the_quota_in_any_minute(api, config, monkeypatch):
    clock = VirtualClock()
    limiter = RequestsPerMinuteLimiter(4, clock=clock.monotonic, sleep=clock.sleep)
    original_acquire = limiter.acquire

    def acquire_and_record() -> None:
        original_acquire()
        clock.sent.append(clock.now)

    monkeypatch.setattr(limiter, "acquire", acquire_and_record)
    monkeypatch.setattr(TapAmplemarket, "rate_limiter", limiter)

    result = sync(config)

    assert len(clock.sent) == len(api.requests) > 8, "every request passed the limiter"
    assert all(
        later - earlier >= 60 for earlier, later in zip(clock.sent, clock.sent[4:], strict=False)
    )
    assert sorted(result.ids("calls")) == sorted(c["id"] for c in api.data.calls)
