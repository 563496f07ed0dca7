"""What every stream of one run shares: the limiter, the in-flight bound, the API's answers."""

from __future__ import annotations

import dataclasses
import threading
import typing as t

from tap_amplemarket.throttle import PacedLimiter


class ApiAnswers:
    """What the API has answered in this run, across streams.

    One endpoint answering 404 to its first request is a plan without it; two doing so
    before any endpoint has answered at all is an api_url that is not the API's. Likewise
    a 403: one is a plan without the endpoint, two before any answer a key without access.
    """

    def __init__(self) -> None:
        self.answered = False
        self.missing: list[str] = []
        self.forbidden: list[str] = []  # endpoints that answered 403


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What every stream of one run shares: one limiter (the quota is per key), one bound on
    requests in flight however many threads fetch, and what the API has answered."""

    limiter: PacedLimiter
    in_flight: threading.BoundedSemaphore
    answers: ApiAnswers = dataclasses.field(default_factory=ApiAnswers)

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> RunContext:
        return cls(
            limiter=PacedLimiter(int(config["max_requests_per_minute"])),
            in_flight=threading.BoundedSemaphore(int(config["max_concurrent_requests"])),
        )


class HasRunContext(t.Protocol):
    """A tap that makes its run's RunContext (TapAmplemarket)."""

    @property
    def run_context(self) -> RunContext: ...
