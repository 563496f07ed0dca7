"""Errors the tap raises, each worded as one line a person can act on."""

from __future__ import annotations

import email.utils
import logging
import math
import re
import time
import typing as t
import urllib.request
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import msgspec
import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from typing_extensions import override


class AmplemarketError(Exception):
    """An error whose message is the one line to show: the cause and the fix."""


class AuthenticationError(AmplemarketError, FatalAPIError):
    """The API rejected the key (401), or refused the run's first request (403)."""


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


class PlanForbiddenError(APIRequestError):
    """403 on a list endpoint, unless another answered 403 before any answered 200: the
    key's plan lacks the endpoint (the docs do not say whether it answers 403 or 404)."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"GET {path} answered 403 Forbidden: the key's plan does not include it (deselect "
            "the stream, or ask Amplemarket to add it to the plan)"
        )
        self.path = path


class ForeignLinkError(AmplemarketError, FatalAPIError):
    """A next link or redirect points away from api_url's origin: the key must not follow."""


class NotTheAPIError(AmplemarketError):
    """What answers at api_url is not the Amplemarket API (or nothing does): a request
    failed past FIRST_CONTACT_SECONDS (client.py) before the API answered once, or a cache
    answered 304."""


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
    """Redacts every secret this process was given (see `remember_secrets`) from every log
    line, tracebacks included, whatever put it there (e.g. an error body that echoes the
    request's Authorization header)."""

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if (scrubbed := scrub(message)) != message:
            record.msg, record.args = scrubbed, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


SECRET_FILTER = SecretFilter()

#: Every secret this process was given (see remember_secrets): `scrub` hides them all.
_SECRETS: set[str] = set()
#: The userinfo of a URL (`//user:password@`): hidden whatever its length.
_USERINFO = re.compile(r"(?<=//)[^/?#\s@]+@")


def scrub(text: str) -> str:
    """`text` without any secret this process was given, nor any URL's userinfo. Call it
    before cutting a text short (`shorten` does): a secret cut in two no longer matches,
    and its first part would show."""
    for secret in sorted(_SECRETS, key=len, reverse=True):  # a secret holding another
        text = redact(text, secret)
    return _USERINFO.sub("***@", text)


def url_secrets(url: str) -> set[str]:
    """What a URL carries that must not be shown: its userinfo (the user alone too, when it
    has no password: a token) and its query's values, as written and decoded."""
    try:
        parts = urlsplit(url)
        found = {value for _, value in parse_qsl(parts.query)}
        userinfo, _, _ = parts.netloc.rpartition("@")
        if userinfo:
            user, colon, password = userinfo.partition(":")
            found |= {userinfo, password} if colon else {user}
    except ValueError:
        return set()
    return found | {unquote(secret) for secret in found}


def proxy_urls() -> list[str]:
    """The proxies the environment names (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY...)."""
    return list(urllib.request.getproxies_environment().values())


def remember_secrets(config: t.Mapping[str, t.Any]) -> None:
    """Hide from every log line and error (`scrub`) the key, what api_url carries in its
    userinfo or query, and the credentials of the environment's proxies; install the log
    filter on every handler of the root logger (where the SDK logs)."""
    secrets = set()
    if (key := config.get("api_key")) is not None:  # of any type: a wrong one is quoted
        secrets.add(str(key))
    if isinstance(api_url := config.get("api_url"), str):
        secrets |= url_secrets(api_url)
    for proxy in proxy_urls():
        secrets |= url_secrets(proxy)
    _SECRETS.update(s for s in secrets if len(s) >= MIN_REDACTED_LENGTH)
    for handler in logging.getLogger().handlers:
        if SECRET_FILTER not in handler.filters:
            handler.addFilter(SECRET_FILTER)


def redact_logs(secret: str) -> None:
    """Hide `secret` from every log line and error (see remember_secrets)."""
    remember_secrets({"api_key": secret})


def shown_url(url: str) -> str:
    """`url` as it may be printed: without its userinfo and query (either may hold a secret)."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "(a URL that cannot be read)"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """`text` without secrets (`scrub`) and with control characters (line breaks above all)
    escaped: what the API sends must not start a log line of its own, which could pass for
    one of the tap's."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode(), scrub(text))


def shorten(text: str, limit: int) -> str:
    """`printable(text)` cut to `limit` characters: secrets are hidden before the cut, so
    that none is cut in two and half shown."""
    return printable(text)[:limit]


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
        return printable("; ".join(parts))
    text = response.text or response.reason or "no details given"
    return shorten(" ".join(text.split()), 200)


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
