"""Errors the tap raises, each worded as one line a person can act on."""

from __future__ import annotations

import email.utils
import time
import typing as t

import msgspec
from singer_sdk.exceptions import FatalAPIError

if t.TYPE_CHECKING:
    import requests


class AmplemarketError(Exception):
    """An error whose message is the one line to show: the cause and the fix."""


class AuthenticationError(AmplemarketError, FatalAPIError):
    """The API rejected the key (401/403)."""


class APIRequestError(AmplemarketError, FatalAPIError):
    """The API rejected a request (a 4xx other than auth and rate limits)."""


class EndpointNotAvailableError(APIRequestError):
    """404 on a list endpoint: the key's plan lacks it, so the stream is skipped."""


class RateLimitedError(Exception):
    """429 with a usable Retry-After: wait exactly that long, then retry."""

    def __init__(self, retry_after: float, path: str) -> None:
        super().__init__(f"Rate limited on {path}: retrying after {retry_after:g}s")
        self.retry_after = retry_after


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
        return "; ".join(parts)
    return (response.text or response.reason or "no details given")[:200].strip()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), None if unusable."""
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
    return max(seconds, 0.0)
