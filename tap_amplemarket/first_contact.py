"""Before the API has answered once in a run: a wrong api_url must say so in seconds.

A connection test (`--test`, Airbyte's `check`) lives wholly in this phase: it never waits
out a 429, and every request of it is short.
"""

from __future__ import annotations

import math
from http import HTTPStatus

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_amplemarket.errors import RateLimitedError, parse_retry_after, unresolved_host
from tap_amplemarket.http import is_html, media_type, shown_url

#: Seconds of retries before giving up on an api_url that has not answered yet in this run,
#: and all a connection test takes.
FIRST_CONTACT_SECONDS = 15.0
#: The longest one request of a connection test may take: two attempts and a wait fit in
#: FIRST_CONTACT_SECONDS.
CONNECTION_TEST_TIMEOUT = 6


def page_at_first_contact(response: requests.Response, answered: bool) -> bool:
    """An HTML page before the API has answered once.

    A login page, a proxy, a gateway at a wrong api_url (a 5xx is retried for
    FIRST_CONTACT_SECONDS first; a 3xx is a redirect, reported as such).
    """
    status = response.status_code
    return (
        not answered
        and not HTTPStatus.MULTIPLE_CHOICES <= status < HTTPStatus.BAD_REQUEST
        and status < HTTPStatus.INTERNAL_SERVER_ERROR
        and is_html(response)
    )


def rate_limited_now(path: str, response: requests.Response) -> str:
    """The line that ends a connection test answered 429: when to try again."""
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    when = f"{math.ceil(retry_after)} s" if retry_after and retry_after > 0 else "a minute"
    return (
        f"Amplemarket rate limited GET {path} (429): a connection test does not wait; "
        f"rate limited, try again in {when}"
    )


def first_contact_budget(answered: bool, failure: Exception) -> float | None:
    """Seconds of retries a failure gets before the API has answered once in this run.

    None once it has. A 429 is the API answering: it waits as usual.
    """
    if answered or isinstance(failure, RateLimitedError):
        return None
    return FIRST_CONTACT_SECONDS


def not_the_api(url_base: str, where: str, failure: Exception, timeout: int) -> str:
    """The line for an api_url that never answered as the API: what happened, and the fix."""
    if isinstance(failure, RetriableAPIError) and failure.response is not None:
        cause = f"{failure}; {media_type(failure.response)}"
    elif isinstance(failure, requests.exceptions.Timeout):
        cause = f"no complete answer within {timeout}s"
    elif (host := unresolved_host(failure)) is not None:
        cause = f"the host name {host} did not resolve"
    else:
        cause = f"could not connect: {type(failure).__name__}"
    return (
        f"api_url {shown_url(url_base)} has not answered {where} as the Amplemarket "
        f"API ({cause}): check api_url (if it is right, the API may be down: try again later)"
    )
