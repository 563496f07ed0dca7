"""The probe's session: budgeted, read-only GETs through the streams' own request code.

At most MAX_REQUESTS GETs, retries included, paced at 1/PACE_SHARE of
max_requests_per_minute; each answer kept as an `Answer` (status, media type, body), never
raising for what the API says, so each fact can read what it needs.
"""

from __future__ import annotations

import dataclasses
import threading
import typing as t
from urllib.parse import parse_qsl, urlsplit

from singer_sdk.exceptions import RetriableAPIError

from tap_amplemarket.client import AmplemarketStream
from tap_amplemarket.errors import (
    AmplemarketError,
    AuthenticationError,
    EndpointNotAvailableError,
    PlanForbiddenError,
)
from tap_amplemarket.http import json_body, media_type
from tap_amplemarket.run_context import RunContext
from tap_amplemarket.throttle import PacedLimiter

if t.TYPE_CHECKING:
    import requests

    from tap_amplemarket.tap import TapAmplemarket

#: The most GET requests a probe sends, retries included.
MAX_REQUESTS = 60
#: The probe's pace, as a share of max_requests_per_minute.
PACE_SHARE = 4
CONFIRMED, DIFFERS, NO_DATA = "CONFIRMED", "DIFFERS", "NO DATA"
#: The streams whose first page the probe reads, the first one first (a key check).
FIRST_PAGES = (
    "users",
    "calls",
    "sequences",
    "mailboxes",
    "lead_lists",
    "excluded_domains",
    "excluded_emails",
    "dispositions",
    "accounts",
)


class KeyRejectedError(AmplemarketError):
    """The API refused the key (401, or 403 on the first request)."""


class BudgetSpentError(AmplemarketError):
    """A further request could take the probe past MAX_REQUESTS."""


@dataclasses.dataclass
class Finding:
    """One fact: what was seen (no record values) and, if it differs, what follows."""

    fact: str
    status: str
    seen: str
    follows: str = ""
    #: Whether the tap depends on it (a DIFFERS that makes the exit code 1).
    matters: bool = False

    def line(self) -> str:
        """The finding as one report line: status, fact, what was seen, and what follows."""
        follows = f" -> {self.follows}" if self.follows else ""
        return f"{self.status:<9} {self.fact}: {self.seen}{follows}"


@dataclasses.dataclass
class Answer:
    """One GET's outcome: an HTTP status and, for a 200, its body and media type."""

    status: int
    body: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    media_type: str = ""
    failure: str = ""  # the kind of error, for an answer the stream could not read

    @property
    def ok(self) -> bool:
        """Whether the GET got a 200 the stream could read."""
        return self.status == 200 and not self.failure

    def records(self, key: str) -> list[dict[str, t.Any]]:
        """The objects in the body's `key` list; none if the body has no such list."""
        found = self.body.get(key)
        return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []

    def next_query(self) -> dict[str, str] | None:
        """The query of the body's `_links.next` link; None if there is none."""
        links = self.body.get("_links")
        link = links.get("next") if isinstance(links, dict) else None
        href = link.get("href") if isinstance(link, dict) else None
        return dict(parse_qsl(urlsplit(href).query)) if isinstance(href, str) else None


class Prober:
    """Sends the probe's GETs through the streams' own request code, within the budget."""

    def __init__(self, tap: TapAmplemarket) -> None:
        """Take the tap's streams, made to send one request at a time at the probe's pace."""
        config = tap.config
        pace = max(1, int(config["max_requests_per_minute"]) // PACE_SHARE)
        # One request at a time, at the probe's own pace, whatever the settings say.
        run = RunContext(PacedLimiter(pace), threading.BoundedSemaphore(1))
        self.streams = {s.name: s for s in tap.streams.values() if isinstance(s, AmplemarketStream)}
        for stream in self.streams.values():
            stream.run_context = run
        self.first: dict[str, Answer] = {}

    @property
    def sent(self) -> int:
        """Requests sent so far, retries included, across every stream."""
        return sum(stream.stats.requests for stream in self.streams.values())

    def get(
        self,
        name: str,
        params: dict[str, t.Any] | None = None,
        context: dict[str, t.Any] | None = None,
    ) -> Answer:
        """GET the stream's endpoint with its own first-page parameters, `params` added.

        A None value in `params` removes that parameter.
        """
        stream = self.streams[name]
        if self.sent + int(stream.config["max_retries"]) > MAX_REQUESTS:
            raise BudgetSpentError("the probe's request budget is spent")
        query = {**stream.get_url_params(context, None), **(params or {})}
        prepared = stream.build_prepared_request(
            method="GET",
            url=stream.get_url(context),
            params={k: v for k, v in query.items() if v is not None},
            headers=stream.http_headers,
        )
        # The SDK names its single attempt `_request`, with no public alias.
        send = stream.request_decorator(stream._request)
        try:
            response: requests.Response = send(prepared, context)
        except AuthenticationError:
            raise KeyRejectedError("the API key is rejected") from None
        except PlanForbiddenError:
            return Answer(403)
        except EndpointNotAvailableError:
            return Answer(404)
        except (AmplemarketError, RetriableAPIError) as exc:
            return Answer(200 if isinstance(exc, RetriableAPIError) else 400, failure=kind(exc))
        stream.run_context.answers.answered = True
        return Answer(response.status_code, json_body(response), media_type(response))

    def records(self, name: str) -> list[dict[str, t.Any]]:
        """The records of stream `name`'s first page as read; none if it was not read."""
        stream = self.streams[name]
        answer = self.first.get(name)
        return answer.records(stream.records_key or name) if answer else []


def kind(exc: BaseException) -> str:
    """An error's class, never its text (an API's message can quote a record)."""
    return type(exc).__name__
