"""Client-side request limiter, so a sync stays under the API's per-minute quota."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable


class RequestsPerMinuteLimiter:
    """Allows at most `max_per_minute` requests in any sliding 60-second window.

    A sliding window (rather than a token bucket) matches how the API counts: a burst
    followed by steady traffic can never exceed the quota within one minute.
    """

    WINDOW_SECONDS = 60.0

    def __init__(
        self,
        max_per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_per_minute < 1:
            msg = "max_per_minute must be at least 1"
            raise ValueError(msg)
        self.max_per_minute = max_per_minute
        self._clock = clock
        self._sleep = sleep
        self._sent: collections.deque[float] = collections.deque(maxlen=max_per_minute)
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def acquire(self) -> None:
        """Block until one more request fits in the window, then record it."""
        with self._lock:
            if len(self._sent) == self.max_per_minute:
                wait = self._sent[0] + self.WINDOW_SECONDS - self._clock()
                if wait > 0:
                    self.waited_seconds += wait
                    self._sleep(wait)
            self._sent.append(self._clock())
