"""Errors the tap raises, each worded as one line a person can act on."""

from __future__ import annotations

import email.utils
import json
import math
import time
import typing as t
from urllib.parse import urlsplit

import requests
import urllib3
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError

from tap_amplemarket.secrets import redacted


class AmplemarketError(Exception):
    """An error whose message is the one line to show: the cause and the fix."""


class AuthenticationError(AmplemarketError, FatalAPIError):
    """The API rejected the key (401), or refused the run's first request (403)."""


class APIRequestError(AmplemarketError, FatalAPIError):
    """The API rejected a request (a 4xx other than auth and rate limits)."""


class EndpointNotAvailableError(APIRequestError):
    """404 on a list endpoint: the key's plan lacks it, so the stream is skipped.

    Unless the endpoint has already answered: see `AmplemarketStream.get_records`.
    """

    def __init__(self, path: str, detail: str) -> None:
        """Built from the path that answered 404 and the detail the answer gave."""
        super().__init__(
            f"Amplemarket answered 404 for {path} ({detail}): this key's plan may not include it"
        )
        self.path = path
        self.detail = detail


class PlanForbiddenError(APIRequestError):
    """403 on a list endpoint: the key's plan lacks the endpoint.

    Unless another answered 403 before any answered 200. The docs do not say whether a plan
    lacking an endpoint answers 403 or 404.
    """

    def __init__(self, path: str) -> None:
        """Built from the path that answered 403."""
        super().__init__(
            f"GET {path} answered 403 Forbidden: the key's plan does not include it (deselect "
            "the stream, or ask Amplemarket to add it to the plan)"
        )
        self.path = path


class ForeignLinkError(AmplemarketError, FatalAPIError):
    """A next link or redirect points away from api_url's origin: the key must not follow."""


class NotTheAPIError(AmplemarketError):
    """What answers at api_url is not the Amplemarket API (or nothing does).

    A request failed past FIRST_CONTACT_SECONDS (first_contact.py) before the API answered
    once, or a cache answered 304.
    """


class RateLimitedTooLongError(AmplemarketError):
    """The API asked the tap to wait longer than it will in one run."""


class BadStateError(AmplemarketError):
    """The state given to the tap cannot be used."""


class UnreadableFileError(AmplemarketError):
    """A file named on the command line cannot be read as JSON."""


#: Errors a run ends with in one line of the tap's (failure_message words each kind).
ENDS_IN_ONE_LINE = (
    AmplemarketError,
    RetriableAPIError,
    requests.exceptions.RequestException,
    ConfigValidationError,  # raised past the SDK's own report of it under --test
)


class RateLimitedError(RetriableAPIError):
    """429: wait what Retry-After says (None or <= 0: back off like any other fault)."""

    def __init__(self, retry_after: float | None, path: str, response: requests.Response) -> None:
        """Built from the parsed Retry-After (see `parse_retry_after`), the path and the 429."""
        if retry_after is None:
            wait = "no usable Retry-After"
        elif retry_after <= 0:
            wait = "Retry-After now or in the past"
        else:
            wait = f"Retry-After {retry_after:g}s"
        super().__init__(f"Rate limited on {path} ({wait})", response)
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if unusable.

    May be zero or negative: the caller treats those as a plain retry.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return seconds if math.isfinite(seconds) else None


def unresolved_host(exc: BaseException) -> str | None:
    """The host name a `requests` error failed to resolve, if that is why it failed."""
    cause = exc.args[0] if exc.args else None
    reason = getattr(cause, "reason", cause)
    if not isinstance(reason, urllib3.exceptions.NameResolutionError):
        return None
    request = getattr(exc, "request", None)
    return urlsplit(str(getattr(request, "url", "") or "")).hostname or "the host"


def failure_message(exc: BaseException) -> str | None:
    """The one line a person should read for an error that ends a run; None for a bug."""
    if not isinstance(exc, ENDS_IN_ONE_LINE):
        return None
    if isinstance(exc, AmplemarketError):
        message = str(exc)
    elif isinstance(exc, ConfigValidationError):
        message = "; ".join(exc.errors) or str(exc)
    elif isinstance(exc, RetriableAPIError):
        message = f"Amplemarket kept failing after every retry ({exc}): try again later"
    elif (host := unresolved_host(exc)) is not None:
        message = (
            f"The host name {host} did not resolve (DNS) after every retry: check api_url and "
            "the network"
        )
    else:
        request = getattr(exc, "request", None)
        parts = urlsplit(str(getattr(request, "url", "") or ""))
        at = f" at {parts.scheme}://{parts.netloc.rpartition('@')[2]}" if parts.netloc else ""
        message = (
            f"Could not reach the Amplemarket API{at} ({type(exc).__name__}) after every retry: "
            "check api_url and the network"
        )
    return redacted(" ".join(message.split()), 500)  # bodies can span many lines


def read_json_file(path: str, what: str, fix: str) -> t.Any:
    """The JSON in `path`.

    Raises UnreadableFileError naming the file, never its content (a config holds the key).
    """
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        msg = f"Cannot read the {what} file {path} ({exc.strerror}): {fix}"
        raise UnreadableFileError(msg) from None
    if not text.strip():
        msg = f"The {what} file {path} is empty: {fix}"
        raise UnreadableFileError(msg)
    try:
        return json.loads(text)
    except ValueError as exc:  # its message gives a position, not the text there
        msg = f"The {what} file {path} is not valid JSON ({exc}): {fix}"
        raise UnreadableFileError(msg) from None
    except RecursionError:
        msg = f"The {what} file {path} nests JSON deeper than can be read: {fix}"
        raise UnreadableFileError(msg) from None
