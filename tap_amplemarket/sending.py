"""How one stream's requests are sent: paced, bounded in flight, retried, page size fitted."""

from __future__ import annotations

import dataclasses
import logging
import typing as t

from tap_amplemarket.errors import NotTheAPIError, RateLimitedError
from tap_amplemarket.first_contact import (
    FIRST_CONTACT_SECONDS,
    first_contact_budget,
    not_the_api,
)
from tap_amplemarket.paging import PageSizeRefusedError
from tap_amplemarket.retries import RETRIABLE, RetryPolicy

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import requests
    from singer_sdk.helpers.types import Context, RequestFunc

    from tap_amplemarket.paging import PageSizing
    from tap_amplemarket.progress import StreamStats
    from tap_amplemarket.run_context import RunContext


@dataclasses.dataclass
class Sender:
    """One stream's way of sending a request, wrapped around the SDK's single attempt.

    Every attempt goes through the run's limiter and in-flight bound; every fault through
    one RetryPolicy; a refused page size asks for the same page smaller; a failure before
    the API has answered once in the run is reported as api_url's.
    """

    stream: str
    path: str
    api_url: str
    timeout: int
    run: RunContext
    page_sizing: PageSizing
    stats: StreamStats
    logger: logging.Logger
    max_attempts: int
    #: A fresh series of waits between attempts (the stream's backoff hooks).
    waits: Callable[[], Iterator[float]]
    #: A connection test gives every failure FIRST_CONTACT_SECONDS at most.
    connection_test: bool = False

    @property
    def where(self) -> str:
        """The request as the log names it."""
        return f"GET {self.path}"

    def wrap(self, attempt_once: RequestFunc) -> RequestFunc:
        """`attempt_once` (send and validate), retried and paced as described above."""
        policy = RetryPolicy(
            limiter=self.run.limiter,
            max_attempts=self.max_attempts,
            waits=self.waits,
            on_retry=self._log_retry,
            give_up_after=self._retry_budget,
        )

        def send(prepared_request: requests.PreparedRequest, context: Context | None) -> t.Any:
            def attempt() -> requests.Response:
                if (fitted := self.page_sizing.fitted(str(prepared_request.url))) is not None:
                    prepared_request.prepare_url(fitted, None)
                self.stats.add(requests=1)
                with self.run.in_flight:
                    return attempt_once(prepared_request, context)

            while True:
                try:
                    response = policy.call(attempt, self.where)
                except PageSizeRefusedError as refused:
                    self.page_sizing.smaller(str(prepared_request.url), refused, self.where)
                    continue  # the same page (same cursor), smaller
                except RETRIABLE as exc:
                    if first_contact_budget(self.run.answers.answered, exc) is None:
                        raise
                    line = not_the_api(self.api_url, self.where, exc, self.timeout)
                    raise NotTheAPIError(line) from None
                self._report_page_size()
                return response

        return send

    def _report_page_size(self) -> None:
        if (settled := self.page_sizing.settled()) is not None:
            self.logger.warning(
                "%s: GET %s refused page[size]=%d; reading it with %s",
                self.stream,
                self.path,
                self.page_sizing.refused,
                settled,
            )

    def _retry_budget(self, failure: Exception) -> float | None:
        """Seconds of retries a failure gets.

        FIRST_CONTACT_SECONDS for a connection test or an API that has not answered yet in
        this run; else no bound.
        """
        if self.connection_test:
            return FIRST_CONTACT_SECONDS
        return first_contact_budget(self.run.answers.answered, failure)

    def _log_retry(self, where: str, wait: float, attempt: int, exc: Exception) -> None:
        rate_limited = isinstance(exc, RateLimitedError) and (exc.retry_after or 0) > 0
        self.stats.add(retries=1, rate_limited_seconds=wait if rate_limited else 0)
        # Name the real cause: the SDK's line says "status 200: OK" for a broken body.
        self.logger.warning("Retrying %s in %.2fs after attempt %d: %s", where, wait, attempt, exc)
