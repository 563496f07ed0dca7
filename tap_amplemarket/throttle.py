"""The client-side request limiter shared by every request the tap makes."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class PacedLimiter:
    """Spaces requests evenly, one every 60 / max_per_minute seconds, across all threads.

    Pacing rather than a sliding window: we do not know how the API counts its quota, and a
    whole minute's quota sent as one burst of concurrent requests draws needless 429s from a
    token-bucket server. A 429 pauses everyone (`pause_for`): the quota is per key.
    """

    def __init__(
        self,
        max_per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Pace at `max_per_minute` requests a minute; tests pass a fake `clock` and `sleep`."""
        if max_per_minute < 1:
            msg = "max_per_minute must be at least 1"
            raise ValueError(msg)
        self.interval = 60 / max_per_minute  # int / int: no float overflow, however large
        self._clock = clock
        self._sleep = sleep
        self._next_slot = -math.inf
        self._lock = threading.Lock()
        #: Seconds requests spent waiting for their slot, summed over threads.
        self.waited_seconds = 0.0
        #: Seconds of pauses the API asked for (429 Retry-After).
        self.paused_seconds = 0.0

    def acquire(self) -> None:
        """Block until this request's slot comes."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
            wait = slot - now
            self.waited_seconds += wait
        if wait > 0:
            self._sleep(wait)

    def pause_for(self, seconds: float) -> None:
        """No request starts in the next `seconds` (the API said Retry-After)."""
        with self._lock:
            self._next_slot = max(self._next_slot, self._clock() + seconds)
            self.paused_seconds += seconds
