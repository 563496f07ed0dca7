"""What one answer of the API means: each status that is not a page, and a page's body.

Plain functions given the answer and what the run knows: each raises the error the answer
is, or returns (the status line a log may show, the records key a page used).
"""

from __future__ import annotations

import typing as t
from http import HTTPStatus

from singer_sdk.exceptions import RetriableAPIError

from tap_amplemarket.errors import (
    APIRequestError,
    AuthenticationError,
    EndpointNotAvailableError,
    ForeignLinkError,
    NotTheAPIError,
    RateLimitedError,
    RateLimitedTooLongError,
    parse_retry_after,
)
from tap_amplemarket.first_contact import page_at_first_contact, rate_limited_now
from tap_amplemarket.http import (
    describe_api_errors,
    json_body,
    media_type,
    redirect_target,
    shown_url,
)
from tap_amplemarket.paging import page_size_in, refused_page_size
from tap_amplemarket.secrets import redacted

if t.TYPE_CHECKING:
    import requests

    from tap_amplemarket.run_context import ApiAnswers


def refuse_unless_served(
    response: requests.Response,
    path: str,
    api_url: str,
    answers: ApiAnswers,
    *,
    connection_test: bool,
) -> None:
    """Raise what a response that is neither a page nor a 5xx means (5xx: the SDK's)."""
    refuse_what_is_not_the_api(response, path, api_url, answered=answers.answered)
    status = response.status_code
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        if connection_test:  # it must answer within seconds: it never waits out a 429
            raise RateLimitedTooLongError(rate_limited_now(path, response))
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise RateLimitedError(retry_after, path, response)
    if status == HTTPStatus.UNAUTHORIZED:
        msg = f"Amplemarket rejected the API key ({status}): check api_key"
        raise AuthenticationError(msg)
    if status == HTTPStatus.FORBIDDEN:
        raise answers.forbidden_at(path)
    if status == HTTPStatus.NOT_FOUND:
        raise EndpointNotAvailableError(path, describe_api_errors(response))
    if (refused := refused_page_size(response)) is not None:
        raise refused  # a smaller page is asked for (see sending.py)
    if HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR:
        fix = "check the tap settings behind that parameter"
        if page_size_in(str(response.request.url)) is not None:  # it may be the page size
            fix += ", or set page_size to 20 (the documented default) if it is the page size"
        errors = describe_api_errors(response)
        msg = f"Amplemarket rejected GET {path} ({status}): {errors}: {fix}"
        raise APIRequestError(msg)


def refuse_what_is_not_the_api(
    response: requests.Response, path: str, api_url: str, *, answered: bool
) -> None:
    """Raise for a web page at first contact, a 304 or a redirect: not the API answering."""
    status = response.status_code
    if page_at_first_contact(response, answered):
        msg = (
            f"api_url {shown_url(api_url)} answered GET {path} with a web page "
            f"({status}, {media_type(response)}), not as the Amplemarket API: check api_url"
        )
        raise NotTheAPIError(msg)
    if status == HTTPStatus.NOT_MODIFIED:  # not a redirect: an answer to a cache check
        msg = (
            f"GET {path} was answered 304 Not Modified, though the tap asks for no "
            "cache check: a cache or proxy at api_url answers, not the API; check api_url"
        )
        raise NotTheAPIError(msg)
    if HTTPStatus.MULTIPLE_CHOICES <= status < HTTPStatus.BAD_REQUEST:
        msg = (
            f"Amplemarket answered GET {path} with a redirect ({status}) to "
            f"{redirect_target(response)}: "
            "not followed, it would carry the key; check api_url"
        )
        raise ForeignLinkError(msg)


def cut_short(path: str, status: int, detail: str = "") -> APIRequestError:
    """The error a 403 or 404 is in the middle of a listing the endpoint has been serving.

    Ending the stream quietly there would skip the rest of it (and, for calls, move the
    bookmark past it).
    """
    return APIRequestError(
        f"Amplemarket answered {status} for {path} in the middle of a listing it had been "
        f"serving{f' ({detail})' if detail else ''}: stopping, so that nothing is skipped; "
        "the next run resumes from the last checkpoint"
    )


def status_line(status: int, path: str) -> str:
    """A failed request as a log shows it: never the body nor the server's reason phrase.

    A body can echo the request, key included, and so can a reason phrase: the standard
    phrase is shown instead.
    """
    kind = "Server" if status >= HTTPStatus.INTERNAL_SERVER_ERROR else "Client"
    phrase = HTTPStatus(status).phrase if status in set(HTTPStatus) else ""
    return f"{status} {kind} Error: {phrase} for GET {path}"


def adopt_alias(response: requests.Response, key: str, aliases: tuple[str, ...]) -> str | None:
    """Move records found under one of `aliases` to `key`; the alias used, if one was.

    Where the docs disagree with themselves on a records key, either is read.
    """
    if not aliases:
        return None
    body = json_body(response)
    alias = next((a for a in aliases if isinstance(body.get(a), list)), None)
    if key in body or alias is None:
        return None
    body[key] = body.pop(alias)
    return alias


def check_page(response: requests.Response, key: str, path: str) -> None:
    """Raise unless a 200's body holds its records under `key` as a list, and no `_errors`.

    Read as empty, a page without its list (missing, null, false, an object) or with errors
    beside it would end a listing (and a window of calls) early, silently. Retried, as a
    broken body is; the run stops with one line if it persists.
    """
    body = json_body(response)
    records = body.get(key)
    if "_errors" in body:
        found = f"no {key!r} list" if records is None else f"a {key!r} list and _errors"
        msg = f"Response from {path} has {found} ({describe_api_errors(response)[:200]})"
        raise RetriableAPIError(msg, response)
    if not isinstance(records, list):
        found = (
            f"keys: {list(body)[:20]}"
            if key not in body
            else f"{key!r} is {type(records).__name__}"
        )
        msg = f"Response from {path} has no {key!r} list ({redacted(found, 200)})"
        raise RetriableAPIError(msg, response)
