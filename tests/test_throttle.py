"""The client-side limiter paces requests evenly under max_requests_per_minute; 429s pause all."""

from __future__ import annotations

import threading

import pytest

from tap_amplemarket import run_context
from tap_amplemarket.throttle import PacedLimiter
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


def test_limiter_paces_requests_evenly_instead_of_bursting():
    clock = VirtualClock()
    limiter = PacedLimiter(6, clock=clock.monotonic, sleep=clock.sleep)  # one every 10 s

    stamps = []
    for _ in range(5):
        limiter.acquire()
        stamps.append(clock.now)
        clock.now += 1  # each request takes a second

    assert stamps == [0, 10, 20, 30, 40], "no burst of the minute's quota at the start"
    assert limiter.waited_seconds == pytest.approx(4 * 9)


def test_a_slow_request_is_not_made_to_wait_again():
    clock = VirtualClock()
    limiter = PacedLimiter(6, clock=clock.monotonic, sleep=clock.sleep)

    limiter.acquire()
    clock.now += 25  # slower than the pace: the next slot is already past
    limiter.acquire()

    assert clock.now == 25


def test_a_pause_holds_back_every_request_sharing_the_limiter():
    clock = VirtualClock()
    limiter = PacedLimiter(600, clock=clock.monotonic, sleep=clock.sleep)  # every 0.1 s
    limiter.acquire()

    limiter.pause_for(30)  # one worker got 429 with Retry-After: 30
    limiter.acquire()  # any worker's next request

    assert clock.now == pytest.approx(30)
    assert limiter.paused_seconds == 30


def test_concurrent_threads_share_one_pace():
    limiter = PacedLimiter(60_000)  # one every millisecond, in real time
    sent: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            limiter.acquire()
            with lock:
                sent.append(limiter._clock())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sent.sort()
    assert len(sent) == 100
    # 100 slots one millisecond apart take at least 99 ms, whatever the threads did.
    assert sent[-1] - sent[0] >= 0.099 - 1e-3


def test_limiter_rejects_a_zero_quota():
    with pytest.raises(ValueError, match="at least 1"):
        PacedLimiter(0)


def test_a_sync_never_sends_more_than_the_quota_in_any_minute(api, config, monkeypatch):
    clock = VirtualClock()
    limiter = PacedLimiter(4, clock=clock.monotonic, sleep=clock.sleep)
    original_acquire = limiter.acquire

    def acquire_and_record() -> None:
        original_acquire()
        clock.sent.append(clock.now)

    monkeypatch.setattr(limiter, "acquire", acquire_and_record)
    monkeypatch.setattr(run_context, "PacedLimiter", lambda _per_minute: limiter)

    result = sync(config)

    assert len(clock.sent) == len(api.requests) > 8, "every request passed the limiter"
    assert all(
        later - earlier >= 60 for earlier, later in zip(clock.sent, clock.sent[4:], strict=False)
    )
    assert sorted(result.ids("calls")) == sorted(c["id"] for c in api.data.calls)
