"""Errors the tap raises, each worded as one line a person can act on."""

from __future__ import annotations

import email.utils
import logging
import math
import re
import time
import typing as t

import msgspec
import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from typing_extensions import override


class AmplemarketError(Exception):
    """An error whose message is the one line to show: the cause and the fix."""


class AuthenticationError(AmplemarketError, FatalAPIError):
    """The API rejected the key (401/403)."""


class APIRequestError(AmplemarketError, FatalAPIError):
    """The API rejected a request (a 4xx other than auth and rate limits)."""


class EndpointNotAvailableError(APIRequestError):
    """404 on a list endpoint: the key's plan lacks it, so the stream is skipped (unless
    the endpoint has already answered: see `AmplemarketStream.get_records`)."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(
            f"Amplemarket answered 404 for {path} ({detail}): this key's plan may not include it"
        )
        self.path = path
        self.detail = detail


class ForeignLinkError(AmplemarketError, FatalAPIError):
    """A next link or redirect points away from api_url's origin: the key must not follow."""


class RateLimitedTooLongError(AmplemarketError):
    """The API asked the tap to wait longer than it will in one run."""


class BadStateError(AmplemarketError):
    """The state given to the tap cannot be used."""


#: Errors a run ends with in one line of the tap's (cli.failure_message words each kind).
ENDS_IN_ONE_LINE = (AmplemarketError, RetriableAPIError, requests.exceptions.RequestException)


class RateLimitedError(RetriableAPIError):
    """429: wait what Retry-After says (None or <= 0: back off like any other fault)."""

    def __init__(self, retry_after: float | None, path: str, response: requests.Response) -> None:
        if retry_after is None:
            wait = "no usable Retry-After"
        elif retry_after <= 0:
            wait = "Retry-After now or in the past"
        else:
            wait = f"Retry-After {retry_after:g}s"
        super().__init__(f"Rate limited on {path} ({wait})", response)
        self.retry_after = retry_after


#: Shorter keys are no real key (the tests' "k"), and replacing them would garble every line.
MIN_REDACTED_LENGTH = 6


def redact(text: str, secret: t.Any) -> str:
    """`text` with every rendering of `secret` (str and repr) replaced by ***."""
    if secret is None or len(str(secret)) < MIN_REDACTED_LENGTH:
        return text
    forms = {str(secret), repr(secret), repr(str(secret))[1:-1]}  # [1:-1]: as escaped
    for form in sorted(forms, key=len, reverse=True):  # a quoted key becomes *** whole
        text = text.replace(form, "***")
    return text


class SecretFilter(logging.Filter):
    """Redacts the key from every log line, tracebacks included, whatever put it there
    (e.g. an error body that echoes the request's Authorization header)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = redact(message, self.secret), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.secret in record.exc_text:
            record.exc_text = redact(record.exc_text, self.secret)
        return True


#: Every key this process was given (see redact_logs): `scrub` hides them all.
_SECRETS: set[str] = set()


def scrub(text: str) -> str:
    """`text` without any key this process was given. Call it before cutting a text short:
    a key cut in two no longer matches, and its first part would show."""
    for secret in _SECRETS:
        text = redact(text, secret)
    return text


def redact_logs(secret: str) -> None:
    """Install a SecretFilter on every handler of the root logger (where the SDK logs), and
    remember `secret` for `scrub`."""
    if len(secret) < MIN_REDACTED_LENGTH:
        return
    _SECRETS.add(secret)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretFilter) and f.secret == secret for f in handler.filters):
            handler.addFilter(SecretFilter(secret))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """`text` with control characters (line breaks above all) escaped: what the API sends
    must not start a log line of its own, which could pass for one of the tap's."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode(), text)


def describe_api_errors(response: requests.Response) -> str:
    """Summarise an Amplemarket `_errors` body as `detail (parameter: x)`; never echoes headers."""
    try:
        body = msgspec.json.decode(response.content)
        errors = body.get("_errors") or []
    except (msgspec.DecodeError, AttributeError):
        errors = []
    parts = []
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        text = str(error.get("detail") or error.get("title") or error.get("code") or "")
        source = error.get("source") or {}
        where = (
            source.get("parameter") or source.get("pointer") if isinstance(source, dict) else None
        )
        parts.append(f"{text} (parameter: {where})" if where else text)
    if parts:
        return printable(scrub("; ".join(parts)))
    text = response.text or response.reason or "no details given"
    return printable(scrub(" ".join(text.split()))[:200])


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if unusable.

    May be zero or negative: the caller treats those as a plain retry."""
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
