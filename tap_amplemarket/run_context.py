"""What every stream of one run shares: the limiter, the in-flight bound, the API's answers."""

from __future__ import annotations

import dataclasses
import threading
import typing as t

from tap_amplemarket.errors import APIRequestError, AuthenticationError, PlanForbiddenError
from tap_amplemarket.progress import RunTally
from tap_amplemarket.throttle import PacedLimiter


class ApiAnswers:
    """What the API has answered in this run, across streams, and what a refusal means.

    One endpoint answering 404 to its first request is a plan without it; two doing so
    before any endpoint has answered at all is an api_url that is not the API's. Likewise
    a 403: one is a plan without the endpoint, two before any answer a key without access.
    Threads reading windows share it: each change is one assignment or append.
    """

    def __init__(self) -> None:
        """Start a run with no answer yet."""
        #: Whether any endpoint has served a page in this run.
        self.answered = False
        #: Endpoints that answered 404 before serving a page.
        self.missing: list[str] = []
        #: Endpoints that answered 403 before serving a page.
        self.forbidden: list[str] = []

    def forbidden_at(self, path: str) -> APIRequestError | AuthenticationError:
        """The error a 403 from `path`'s first page is: its plan lacks it, or the key is bad."""
        if self.answered or not self.forbidden:
            self.forbidden.append(path)
            return PlanForbiddenError(path)
        msg = (
            f"Amplemarket answered 403 for {', '.join(self.forbidden)} and {path}, and "
            "nothing else yet: the API key, or its plan, has no API access: check api_key "
            "and the plan"
        )
        return AuthenticationError(msg)

    def missing_at(self, path: str) -> APIRequestError | None:
        """Note that `path` answered 404 to its first page: the error, if api_url is wrong."""
        if not self.answered and self.missing:
            msg = (
                f"Amplemarket answered 404 for {', '.join(self.missing)} and {path}, and "
                "nothing else yet: api_url is not the API's base URL (check api_url), or "
                "deselect the streams the key's plan lacks"
            )
            return APIRequestError(msg)
        self.missing.append(path)
        return None


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What every stream of one run shares, made once by the tap and handed to each stream.

    One limiter (the quota is per key), one bound on requests in flight however many
    threads fetch, and what the API has answered.
    """

    limiter: PacedLimiter
    in_flight: threading.BoundedSemaphore
    answers: ApiAnswers = dataclasses.field(default_factory=ApiAnswers)
    #: Each stream's counts, and the run's total.
    tally: RunTally = dataclasses.field(default_factory=RunTally)

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> RunContext:
        """The run's shared objects, sized by the tap's settings."""
        return cls(
            limiter=PacedLimiter(int(config["max_requests_per_minute"])),
            in_flight=threading.BoundedSemaphore(int(config["max_concurrent_requests"])),
        )
