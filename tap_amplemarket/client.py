"""Shared REST behaviour of every Amplemarket stream: auth, paging, retries, errors."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import logging
import math
import re
import sys
import threading
import typing as t
from functools import cached_property
from http import HTTPStatus
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

import backoff
import msgspec
import requests
import urllib3
from singer_sdk import RESTStream, SchemaDirectory, StreamSchema
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseHATEOASPaginator
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE
from typing_extensions import override

from tap_amplemarket import schemas
from tap_amplemarket.conform import Conformer, with_extra_column
from tap_amplemarket.deadline import DeadlineSession
from tap_amplemarket.errors import (
    APIRequestError,
    AuthenticationError,
    EndpointNotAvailableError,
    ForeignLinkError,
    NotTheAPIError,
    RateLimitedError,
    describe_api_errors,
    parse_retry_after,
    printable,
    shorten,
    shown_url,
)
from tap_amplemarket.progress import StreamStats, plural
from tap_amplemarket.retries import RETRIABLE, RetryPolicy
from tap_amplemarket.throttle import PacedLimiter
from tap_amplemarket.windows import DateWindows, read_in_windows

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from urllib.parse import ParseResult

    from singer_sdk.helpers.types import Context, RequestFunc
    from singer_sdk.schema.source import Schema
    from singer_sdk.streams.rest import HTTPRequest, PageContext


_BODY_CACHE_KEY = "_amplemarket_body"


def json_body(response: requests.Response) -> dict[str, t.Any]:
    """The response's JSON object, decoded once and cached on the response.

    Raises RetriableAPIError for a body cut short or not JSON, so decoding happens inside
    the retry loop (the SDK alone would fail the sync on such a body).
    """
    cached = response.__dict__.get(_BODY_CACHE_KEY)
    if cached is not None:
        return t.cast("dict[str, t.Any]", cached)
    where = response.request.path_url.split("?")[0]
    try:
        body = msgspec.json.decode(response.content)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        try:
            body = lenient_json(response.content)
        except ValueError:
            msg = f"Response from {where} is not valid JSON ({exc})"
            raise RetriableAPIError(msg, response) from exc
    except RecursionError:
        msg = f"Response from {where} nests JSON deeper than can be read: report it to Amplemarket"
        raise APIRequestError(msg) from None
    if not isinstance(body, dict):
        msg = f"Response from {where} is not a JSON object"
        raise RetriableAPIError(msg, response)
    response.__dict__[_BODY_CACHE_KEY] = body
    return body


def lenient_json(content: bytes) -> t.Any:
    """JSON that msgspec refuses but can still be read: a lone surrogate escape (text cut in
    the middle of an emoji) or a byte that is not UTF-8 becomes U+FFFD; a number beyond a
    float (1e400), an integer of more digits than Python reads, and NaN or Infinity (not
    JSON, but sent by some encoders) are kept as their text."""
    options: dict[str, t.Any] = {
        "parse_float": _finite_or_text,
        "parse_int": _int_or_text,
        "parse_constant": str,
    }
    try:
        value = json.loads(content, **options)
    except UnicodeDecodeError:
        value = json.loads(content.decode("utf-8", "replace"), **options)
    return _valid_text(value)


def _finite_or_text(text: str) -> float | str:
    number = float(text)
    return number if math.isfinite(number) else text


def _int_or_text(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return text


def _valid_text(value: t.Any) -> t.Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_valid_text(item) for item in value]
    if isinstance(value, dict):
        return {_valid_text(key): _valid_text(item) for key, item in value.items()}
    return value


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) that `requests` connects to for `url`: what must match for the
    key to be sent there. Raises ValueError for a URL it cannot send.

    Read as requests prepares and urllib3 parses it, not by urllib.parse, which disagrees on
    some forms (`http://evil\\@api/` is host "api" to urllib.parse, "evil" to urllib3)."""
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
        parts = urllib3.util.parse_url(prepared.url or "")
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise ValueError(str(exc)) from None
    scheme = (parts.scheme or "").lower()
    return scheme, (parts.host or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)


def link_url(url_base: str, href: str, page_url: str | None = None) -> str:
    """The URL of an API link, refused unless it stays on api_url's origin.

    "Links are relative to the base URL" (the docs): a root-relative link ("/calls?...") is
    kept under api_url's own path, so an api_url behind a path-prefixed proxy keeps working.
    Any other link resolves as RFC 3986 says, against the page it came from (`page_url`; a
    query-only "?page[after]=..." keeps that page's path), and must then still be on
    api_url's scheme, host and port: the request carries the key. A backslash is refused
    outright: parsers disagree on where it ends a host.
    """
    try:
        if "\\" in href:
            raise ValueError("a backslash")
        if href.startswith("/") and not href.startswith("//"):
            url = url_base + href
        else:
            url = urljoin(page_url or url_base + "/", href)
        target = origin(url)
    except ValueError as exc:
        msg = (
            f"Amplemarket sent a link that is not a URL the tap can follow safely ({exc}): "
            "refusing to send the API key with it; check api_url"
        )
        raise ForeignLinkError(msg) from None
    if target != origin(url_base):
        scheme, host, port = target
        msg = (
            f"Amplemarket sent a link to another origin ({scheme}://{host}:{port}), not "
            f"{url_base}: refusing to send the API key there; check api_url"
        )
        raise ForeignLinkError(msg)
    return url


def page_identity(url: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """A URL as a page: host, path and query parameters in any order or encoding."""
    parts = urlsplit(url)
    return parts.netloc.lower(), parts.path, tuple(sorted(parse_qsl(parts.query)))


#: Parents a child endpoint answers 404 for, before it has answered any, that say the key's
#: plan lacks it (fewer may be parents deleted since they were listed).
PARENTS_NOT_FOUND_FOR_PLAN = 3
#: Seconds of retries before giving up on an api_url that has not answered yet in this run.
FIRST_CONTACT_SECONDS = 15.0
#: Pages in a row that link on but hold no record not read before, after which paging stops.
MAX_PAGES_WITH_NOTHING_NEW = 5
#: The page size every example of the docs shows as the default, and /mailboxes' maximum:
#: what the tap falls back to when an endpoint refuses the size it asked for.
DOCUMENTED_DEFAULT_PAGE_SIZE = 20


class PageSizeRefusedError(APIRequestError):
    """A 400 about `page[size]`: the endpoint takes a smaller page, or none at all."""

    def __init__(self, message: str, largest_named: int | None) -> None:
        super().__init__(message)
        #: The largest page size the error names (e.g. "between 1 and 50"), if any.
        self.largest_named = largest_named


def refused_page_size(response: requests.Response) -> PageSizeRefusedError | None:
    """The refusal of `page[size]` in a 400 or 422 answer, if that is what it is: an
    `_errors` entry whose source parameter (or, failing that, text) names `page[size]`."""
    if response.status_code not in {HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY}:
        return None
    try:
        errors = msgspec.json.decode(response.content).get("_errors")
    except (msgspec.DecodeError, AttributeError):
        return None
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        source = error.get("source")
        parameter = source.get("parameter") if isinstance(source, dict) else None
        text = " ".join(str(error.get(k) or "") for k in ("title", "detail"))
        if parameter == "page[size]" or (parameter is None and "page[size]" in text):
            numbers = [int(n) for n in re.findall(r"\d{1,9}", text) if int(n) > 0]
            return PageSizeRefusedError(describe_api_errors(response), max(numbers, default=None))
    return None


def with_page_size(url: str, size: int | None) -> str:
    """`url` with its `page[size]` set to `size`, or removed if None."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "page[size]"]
    if size is not None:
        query.append(("page[size]", str(size)))
    return urlunsplit(parts._replace(query=urlencode(query, safe="[]:")))


def page_size_in(url: str) -> int | None:
    """The `page[size]` a URL asks for, if any (anything not a number counts as asked)."""
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key == "page[size]":
            return int(value) if value.isdigit() else 10**9
    return None


class NextLinkPaginator(BaseHATEOASPaginator):
    """Follows `_links.next.href`, which already carries every filter and the cursor.

    Every page it was given is remembered, so a link back to any of them (a cycle of any
    length, a page linking to itself) ends the pagination instead of looping; and so is
    every record key, so that more than MAX_PAGES_WITH_NOTHING_NEW pages in a row with no
    record not read before (empty, or the same records under new cursors) end it too. A
    page or two like that (a listing that shifted under its cursor) is paged past.
    """

    def __init__(
        self,
        url_base: str,
        on_cycle: Callable[[str], None],
        records_key: str,
        key_fields: tuple[str, ...],
        max_pages: int | None = None,
        on_too_many_pages: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self.url_base = url_base
        self.on_cycle = on_cycle
        self.records_key = records_key
        self.key_fields = key_fields
        self.max_pages = max_pages
        self.on_too_many_pages = on_too_many_pages
        self._pages_seen: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()
        self._keys_seen: set[int] = set()
        self._nothing_new_in_a_row = 0

    def _going_nowhere(self, body: dict[str, t.Any]) -> bool:
        """Whether this page ends a run of too many pages with nothing new."""
        records = body.get(self.records_key)
        if not isinstance(records, list):
            return False
        keys = {
            hash(repr(tuple(r.get(k) for k in self.key_fields)))
            for r in records
            if isinstance(r, dict)
        }
        new = keys - self._keys_seen
        self._keys_seen |= new
        self._nothing_new_in_a_row = 0 if new else self._nothing_new_in_a_row + 1
        return self._nothing_new_in_a_row > MAX_PAGES_WITH_NOTHING_NEW

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        # An empty page ends the listing only if it has no next link (see get_next_url);
        # the SDK would stop at once, with a line that reads like an error.
        return True

    @override
    def get_next_url(self, response: requests.Response) -> str | None:
        page_url = str(response.request.url)
        self._pages_seen.add(page_identity(page_url))
        href = next_href(json_body(response), page_url)
        if href is None:
            return None
        url = link_url(self.url_base, href, page_url)
        if page_identity(url) in self._pages_seen or self._going_nowhere(json_body(response)):
            self.on_cycle(href)
            return None
        if self.max_pages is not None and len(self._pages_seen) >= self.max_pages:
            if self.on_too_many_pages is not None:
                self.on_too_many_pages(self.max_pages)
            return None
        return url


def next_href(body: dict[str, t.Any], page_url: str) -> str | None:
    """The href of a page's `_links.next`; None if the page has none (the last page).

    A next link in any shape but the documented `{"href": "..."}` (a plain string, a list,
    `{"url": ...}`), or `_links` that is not an object, is an error: read as "no next page",
    it would end the listing early, silently.
    """
    if "_links" not in body:
        return None
    links = body["_links"]
    if isinstance(links, dict) and links.get("next") is None:
        return None
    next_link = links.get("next") if isinstance(links, dict) else links
    href = next_link.get("href") if isinstance(next_link, dict) else None
    if isinstance(href, str) and href:
        return href
    where = urlsplit(page_url).path
    shown = shorten(json.dumps(next_link, default=str), 200)
    msg = (
        f"Response from {where} has a next link the tap cannot read ({shown}; expected "
        '{"href": "..."}): stopping, so that the rest of the listing is not skipped; report '
        "it to Amplemarket"
    )
    raise APIRequestError(msg)


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
        msg = f"Response from {path} has no {key!r} list ({shorten(found, 200)})"
        raise RetriableAPIError(msg, response)


def partition_name(context: Context | None) -> str:
    """A partition as a log line names it: `[user_id=...]`, or "" for a whole stream."""
    if not context:
        return ""
    return printable(f"[{', '.join(f'{k}={v}' for k, v in context.items())}]")


class ApiAnswers:
    """What the API has answered in this run, across streams.

    One endpoint answering 404 to its first request is a plan without it; two doing so
    before any endpoint has answered at all is an api_url that is not the API's.
    """

    def __init__(self) -> None:
        self.answered = False
        self.missing: list[str] = []


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


class SchemaFiles(SchemaDirectory):
    """`schemas/<stream name>.json`, each with the `_extra` column added (here, not per file)."""

    @override
    def fetch_schema(self, key: str) -> Schema:
        return with_extra_column(super().fetch_schema(key))


class AmplemarketStream(RESTStream["ParseResult | None"]):
    """One Amplemarket list endpoint: `GET path` -> `{records_key: [...], "_links": {...}}`."""

    primary_keys: t.ClassVar[tuple[str, ...]] = ("id",)
    #: `schemas/<stream name>.json` plus `_extra`
    schema = StreamSchema(SchemaFiles(schemas))
    #: Top-level key of the response that holds the records, if not the stream's name.
    records_key: t.ClassVar[str | None] = None
    #: Largest `page[size]` the endpoint accepts; `None` if the endpoint is not paginated.
    max_page_size: t.ClassVar[int | None] = 100
    #: The key under which each record's id is handed to child streams (e.g. "user_id").
    child_context_key: t.ClassVar[str | None] = None
    #: Top-level fields the API sends that are loaded elsewhere by design: dropped silently.
    ignored_fields: t.ClassVar[tuple[str, ...]] = ()
    #: Set on a stream read in date windows (windows.py): its filters, first window, lookback.
    date_windows: t.ClassVar[DateWindows | None] = None
    #: First retry waits about this many seconds, doubling up to a minute.
    backoff_factor: t.ClassVar[float] = 2.0
    # A redirect would take the key wherever it points: 3xx is reported, never followed.
    allow_redirects = False
    # The SDK's per-value pass was half the run time and drops what does not fit: instead
    # `post_process` conforms each record once (conform.py), keeping the misfits in `_extra`.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    # A STATE only where it is a resume point: after a date window (windows.Bookmark).
    STATE_MSG_FREQUENCY = sys.maxsize

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.stats = StreamStats()
        self.endpoint_unavailable = False
        self._parents_not_found = 0  # 404s for parents before the endpoint answered any
        # The page size the endpoint refused (None: none so far), the largest it is then
        # asked for (None: no cap), whether `page[size]` is sent at all, and whether the
        # size settled on has been reported. Threads reading windows of calls share them.
        self._page_size_refused: int | None = None
        self._page_size_cap: int | None = None
        self._sends_page_size = True
        self._page_size_reported = False
        self._page_size_lock = threading.Lock()
        #: Why this run has not read every record of the stream, once it has not (a
        #: partition skipped or cut short): then it must not have a target drop any row.
        self.unread: str | None = None

    @property
    def run_context(self) -> RunContext:
        """The limiter, in-flight bound and API answers of this run, made once by the tap."""
        # The SDK keeps a stream's tap as `_tap`, with no public accessor.
        return t.cast("HasRunContext", self._tap).run_context

    @cached_property
    @override
    def requests_session(self) -> requests.Session:
        # Bounds each whole response, not only each socket read (see deadline.py).
        session = DeadlineSession(self.timeout)
        # Honour HTTP(S)_PROXY/NO_PROXY, but read them once: requests otherwise rescans the
        # whole environment on every send (15% of a sync's CPU). Every URL is on url_base.
        # Only for https, which a proxy tunnels unread: plain http (loopback only) would hand
        # the proxy the key in clear, and a proxy cannot reach this machine's loopback anyway.
        if urlsplit(self.url_base).scheme == "https":
            session.proxies.update(requests.utils.get_environ_proxies(self.url_base))
        session.trust_env = False
        return session

    @cached_property
    def conformer(self) -> Conformer:
        # Built on first use: by then a catalog given on the command line has been applied.
        return Conformer(
            self.effective_schema,
            stream=self.name,
            primary_keys=self.primary_keys,
            ignored=self.ignored_fields,
            warn=lambda message: self.log("%s", message, level=logging.WARNING),
        )

    @override
    def generate_child_contexts(
        self, record: dict[str, t.Any], context: Context | None
    ) -> Iterable[Context | None]:
        # No child streams, no contexts: the SDK would build one per record and discard it.
        if not self.child_streams:
            return ()
        return super().generate_child_contexts(record, context)

    @property
    @override
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @cached_property
    @override
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.config["api_key"])

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        # The documented media type; plain JSON is as welcome, should an endpoint send it.
        return {"Accept": "application/vnd.amp+json, application/json;q=0.9"}

    @property
    @override
    def timeout(self) -> int:
        return int(self.config["request_timeout"])

    @property
    def page_size(self) -> int | None:
        """Records per page now: the setting, within the endpoint's maximum and whatever
        smaller size the endpoint settled on; the API's default if it refuses `page[size]`."""
        if self.max_page_size is None:
            return None
        if not self._sends_page_size:
            return DOCUMENTED_DEFAULT_PAGE_SIZE
        size = min(int(self.config["page_size"]), self.max_page_size)
        return size if self._page_size_cap is None else min(size, self._page_size_cap)

    @override
    def get_new_paginator(self) -> NextLinkPaginator:
        return NextLinkPaginator(
            self.url_base,
            self._stop_at_link_cycle,
            self.records_key or self.name,
            self.primary_keys,
            max_pages=int(self.config["max_pages_per_partition"]),
            on_too_many_pages=self._stop_at_too_many_pages,
        )

    def _stop_at_link_cycle(self, href: str) -> None:
        # Records after it may be unread: ending the listing there would lose them silently
        # (and, for calls, a checkpoint would move the bookmark past them).
        msg = (
            f"{self.name}: Amplemarket's next link {shorten(href, 300)} leads back to a page "
            f"already read, or past {MAX_PAGES_WITH_NOTHING_NEW} pages in a row with nothing "
            "new: stopping, so that nothing is skipped; report it to Amplemarket"
        )
        raise APIRequestError(msg)

    def _stop_at_too_many_pages(self, pages: int) -> None:
        msg = (
            f"{self.name}: GET {self.path} still links on after {pages:,} pages of one listing "
            "(max_pages_per_partition): stopping; raise max_pages_per_partition if the account "
            "really holds that much"
        )
        raise APIRequestError(msg)

    @override
    def get_url_params(
        self,
        context: Context | None,
        next_page_token: ParseResult | None,
    ) -> dict[str, t.Any]:
        params = self.filter_params(context)
        if self.page_size is not None and self._sends_page_size:
            params["page[size]"] = self.page_size
        return params

    @override
    def get_child_context(
        self, record: dict[str, t.Any], context: Context | None
    ) -> Context | None:
        if self.child_context_key is None:
            return super().get_child_context(record, context)
        return {self.child_context_key: record["id"]}

    def filter_params(self, context: Context | None) -> dict[str, t.Any]:
        """Query filters of the first page: what the context holds that the path does not (a
        parent's id, a date window); later pages reuse them through the next link."""
        return {k: v for k, v in (context or {}).items() if f"{{{k}}}" not in (self.path or "")}

    @override
    def get_url(self, context: Context | None) -> str:
        # The SDK escapes only "/" in a path parameter: an id holding "?" or "#" would turn
        # into a query of its own. Every character of an id is escaped here.
        url = self.url_base + (self.path or "")
        for key, value in (context or {}).items():
            url = url.replace(f"{{{key}}}", quote(str(value), safe=""))
        return url

    @override
    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        request = super().get_http_request(page=page)
        if page.next_page_token is not None:
            # The next link is complete (filters, size, cursor): do not append params again.
            request.url = page.next_page_token.geturl()
            request.params = {}
        return request

    @override
    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
            msg = f"Amplemarket rejected the API key ({status}): check api_key"
            raise AuthenticationError(msg)
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RateLimitedError(retry_after, self.path or "", response)
        if status == HTTPStatus.NOT_MODIFIED:  # not a redirect: an answer to a cache check
            msg = (
                f"GET {self.path} was answered 304 Not Modified, though the tap asks for no "
                "cache check: a cache or proxy at api_url answers, not the API; check api_url"
            )
            raise NotTheAPIError(msg)
        if HTTPStatus.MULTIPLE_CHOICES <= status < HTTPStatus.BAD_REQUEST:
            try:
                scheme, host, port = origin(urljoin(response.url, response.headers["Location"]))
                where = f"{scheme}://{host}:{port}"
            except (KeyError, ValueError):
                where = "no URL the tap can read"
            msg = (
                f"Amplemarket answered GET {self.path} with a redirect ({status}) to {where}: "
                "not followed, it would carry the key; check api_url"
            )
            raise ForeignLinkError(msg)
        if status == HTTPStatus.NOT_FOUND:
            raise EndpointNotAvailableError(self.path or "", describe_api_errors(response))
        if (refused := refused_page_size(response)) is not None:
            raise refused  # a smaller page is asked for (see request_decorator)
        if HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR:
            msg = (
                f"Amplemarket rejected GET {self.path} ({status}): "
                f"{describe_api_errors(response)}: check the tap settings behind that parameter"
            )
            raise APIRequestError(msg)
        super().validate_response(response)  # 5xx: retriable
        check_page(response, self.records_key or self.name, self.path or "")

    @override
    def response_error_message(self, response: requests.Response) -> str:
        # The SDK's message without the body: a body can echo the request, key included.
        kind = "Server" if response.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR else "Client"
        return f"{response.status_code} {kind} Error: {response.reason} for GET {self.path}"

    @override
    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        # One loop for every fault (see retries.py), every attempt through the shared limiter.
        policy = RetryPolicy(
            limiter=self.run_context.limiter,
            max_attempts=self.backoff_max_tries(),
            waits=self._backoff_waits,
            on_retry=self._log_retry,
            give_up_after=self._first_contact_budget,
        )
        where = f"GET {self.path}"

        def send(prepared_request: requests.PreparedRequest, context: Context | None) -> t.Any:
            def attempt() -> requests.Response:
                self._fit_page_size(prepared_request)
                self.stats.add(requests=1)
                with self.run_context.in_flight:
                    return func(prepared_request, context)

            while True:
                try:
                    response = policy.call(attempt, where)
                except PageSizeRefusedError as refused:
                    self._smaller_page_size(str(prepared_request.url), refused)
                    continue  # the same page (same cursor), smaller
                except RETRIABLE as exc:
                    if self._first_contact_budget(exc) is None:
                        raise
                    raise NotTheAPIError(self._not_the_api(where, exc)) from None
                self._report_page_size()
                return response

        return send

    def _fit_page_size(self, request: requests.PreparedRequest) -> None:
        """Ask for no larger page than the endpoint settled on (a next link, or a request
        prepared before it settled, may carry the size it refused)."""
        url = str(request.url)
        sent = page_size_in(url)
        if sent is None or (self._sends_page_size and sent <= (self.page_size or sent)):
            return
        request.prepare_url(
            with_page_size(url, self.page_size if self._sends_page_size else None), None
        )

    def _smaller_page_size(self, url: str, refused: PageSizeRefusedError) -> None:
        """After the endpoint refused the page size of `url`: the size to ask for next, the
        largest size the error names, else the documented default, else none at all."""
        sent = page_size_in(url)
        with self._page_size_lock:
            if sent is None:  # refused without one: not a page size the tap can change
                msg = (
                    f"Amplemarket rejected GET {self.path} (400) even without page[size]: "
                    f"{refused}: report it to Amplemarket"
                )
                raise APIRequestError(msg) from None
            if not self._sends_page_size or (self.page_size or sent) < sent:
                return  # another thread has settled on a smaller size already
            self._page_size_refused = self._page_size_refused or sent
            self._page_size_reported = False
            named = refused.largest_named
            if named is not None and named < sent:
                self._page_size_cap = named
            elif sent > DOCUMENTED_DEFAULT_PAGE_SIZE:
                self._page_size_cap = DOCUMENTED_DEFAULT_PAGE_SIZE
            else:
                self._sends_page_size = False

    def _report_page_size(self) -> None:
        """Once a page came with the size settled on, say so, once."""
        if self._page_size_refused is None or self._page_size_reported:
            return
        with self._page_size_lock:
            if self._page_size_reported:
                return
            self._page_size_reported = True
            settled = (
                f"page[size]={self.page_size}"
                if self._sends_page_size
                else "no page[size] (the API's own page)"
            )
        self.log(
            "%s: GET %s refused page[size]=%d; reading it with %s",
            self.name,
            self.path,
            self._page_size_refused,
            settled,
            level=logging.WARNING,
        )

    def _first_contact_budget(self, failure: Exception) -> float | None:
        """Seconds of retries a failure gets before the API has answered once in this run: a
        wrong api_url must say so in seconds. A 429 is the API answering: it waits as usual."""
        if self.run_context.answers.answered or isinstance(failure, RateLimitedError):
            return None
        return FIRST_CONTACT_SECONDS

    def _not_the_api(self, where: str, failure: Exception) -> str:
        if isinstance(failure, RetriableAPIError) and failure.response is not None:
            kind = failure.response.headers.get("Content-Type") or "no Content-Type"
            cause = f"{failure}; {kind}"
        elif isinstance(failure, requests.exceptions.Timeout):
            cause = f"no complete answer within {self.timeout}s"
        else:
            cause = f"could not connect: {type(failure).__name__}"
        return (
            f"api_url {shown_url(self.url_base)} has not answered {where} as the Amplemarket "
            f"API ({cause}): check api_url (if it is right, the API may be down: try again later)"
        )

    def _backoff_waits(self) -> Iterator[float]:
        waits = itertools.islice(self.backoff_wait_generator(), 1, None)  # skip the priming 0
        return (self.backoff_jitter(wait) for wait in waits)

    def _log_retry(self, where: str, wait: float, attempt: int, exc: Exception) -> None:
        rate_limited = isinstance(exc, RateLimitedError) and (exc.retry_after or 0) > 0
        self.stats.add(retries=1, rate_limited_seconds=wait if rate_limited else 0)
        # Name the real cause: the SDK's line says "status 200: OK" for a broken body.
        self.log(
            "Retrying %s in %.2fs after attempt %d: %s",
            where,
            wait,
            attempt,
            exc,
            level=logging.WARNING,
        )

    @override
    def backoff_wait_generator(self) -> t.Generator[float, None, None]:
        return backoff.expo(factor=self.backoff_factor, max_value=60)

    @override
    def backoff_max_tries(self) -> int:
        return int(self.config["max_retries"])

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        records = json_body(response)[self.records_key or self.name]  # a list: check_page
        self.stats.add(pages=1)
        self.run_context.answers.answered = True
        self.log("%s: a page of %d records", self.name, len(records), level=logging.DEBUG)
        for record in records:
            if isinstance(record, dict):
                yield record
            else:
                self.conformer.skip()  # not an object: nothing to upsert

    @override
    def post_process(
        self, row: dict[str, t.Any], context: Context | None = None
    ) -> dict[str, t.Any] | None:
        record = self.conformer(row)
        if record is not None:
            self.stats.records += 1  # main thread only: no lock
        return record

    def read_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        """The records of one partition, as the API pages them, or in date windows."""
        if self.date_windows is not None:
            return read_in_windows(self, context)
        return self.request_records(context)

    @property
    @override
    def is_sorted(self) -> bool:
        # Date windows are written in order, each sorted by start date: resumable.
        return self.date_windows is not None

    @property
    @override
    def check_sorted(self) -> bool:
        # The bookmark is set at each checkpoint, not from records (a lookback re-reads
        # older ones, and the SDK compares them as text): see windows.Bookmark.
        return False

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        if self.endpoint_unavailable:
            return
        self.stats.start()
        records, pages = self.stats.records, self.stats.pages
        read = False
        try:
            yield from self.read_records(context)
            read = True
            if context is not None:  # one line per partition; a whole stream has its summary
                self.log(
                    "%s %s: %s in %s",
                    self.name,
                    partition_name(context),
                    plural(self.stats.records - records, "record"),
                    plural(self.stats.pages - pages, "page"),
                )
        except EndpointNotAvailableError as exc:
            self._skip_or_raise(exc, context, partition_pages=self.stats.pages - pages)
        finally:
            self.stats.finish()
            if not read and self.unread is None:  # failed, or stopped by its consumer
                self.unread = f"{partition_name(context) or 'it'} was not read to its end"
        if read and context is None:  # a stream of its own: its one partition is read
            self.read_whole()

    @property
    def marks_deletions(self) -> bool:
        """Whether a run that reads this stream whole ends it with ACTIVATE_VERSION, so that
        a target marks deleted (or removes) the rows that run did not see.

        Only a selected full-table stream, with emit_activate_version_messages on; never
        one whose class declares a replication key (calls: a run reads from the bookmark
        or start_date, whatever a catalog says), nor under BATCH (its last BATCH message
        comes after the read ends, and would land after the rows it holds were dropped).
        """
        return bool(
            self.selected
            and self.emit_activate_version_messages
            and self.replication_method == REPLICATION_FULL_TABLE
            and not isinstance(inspect.getattr_static(type(self), "replication_key"), str)
            and not self.get_batch_config(self.config)
        )

    @override
    def _write_activate_version_message(self, full_table_version: int) -> None:
        # The SDK sends it as a stream starts, before any record: a target then drops every
        # row this run has not read yet, and a run that stops part-way leaves them dropped.
        # It is sent by `read_whole` instead, once the stream has been read to its end.
        pass

    def read_whole(self) -> None:
        """Every partition of this stream has been read (a child's: those of every parent
        listed): tell the target so, unless one was skipped or cut short; then the same for
        each child stream, whose parents are all listed only if this stream was read whole."""
        if self.unread is not None:
            if self.marks_deletions and not self.endpoint_unavailable:  # that has its warning
                self.log(
                    "%s: rows deleted in Amplemarket are not marked this run, as %s: the "
                    "next run that reads it whole marks them",
                    self.name,
                    self.unread,
                    level=logging.WARNING,
                )
        elif self.marks_deletions:
            if self._stream_version is None:
                # A child stream without a parent: the SDK never started it, yet it is
                # read whole (nothing). Its SCHEMA and version, as the SDK's sync() makes them.
                self._write_schema_message()
                self._stream_version = self._initialized_at // 1000
            super()._write_activate_version_message(self._stream_version)
        for child in self.child_streams:
            if isinstance(child, AmplemarketStream):
                if self.unread is not None and child.unread is None:
                    child.unread = f"its parent stream {self.name} was not read whole"
                child.read_whole()

    def _skip_or_raise(
        self, exc: EndpointNotAvailableError, context: Context | None, partition_pages: int
    ) -> None:
        """What a 404 means depends on what this endpoint has already answered."""
        if partition_pages == 0 and context:
            # A parent deleted since it was listed, if the endpoint answers for others; if
            # it has answered for none yet, the first few may be deleted parents too.
            self._parents_not_found += 1
            if self.stats.pages > 0 or self._parents_not_found < PARENTS_NOT_FOUND_FOR_PLAN:
                where = partition_name(context)
                self.log("%s: skipping %s: not found (404), deleted since listed", self.name,
                         where)  # fmt: skip
                self.unread = self.unread or f"{where} answered 404"
                return
        if self.stats.pages == 0:
            answers = self.run_context.answers
            if not answers.answered and answers.missing:
                msg = (
                    f"Amplemarket answered 404 for {', '.join(answers.missing)} and {exc.path}, "
                    "and nothing else yet: api_url is not the API's base URL (check api_url), "
                    "or deselect the streams the key's plan lacks"
                )
                raise APIRequestError(msg) from None
            answers.missing.append(exc.path)
            # Warn once and skip: one endpoint missing from a plan must not fail the sync.
            self.endpoint_unavailable = True
            self.unread = "the key's plan lacks it"
            doubt = "" if answers.answered else " (or api_url is wrong, if other streams say so)"
            self.log("Skipping stream %s: %s%s", self.name, exc, doubt, level=logging.WARNING)
            return
        # A 404 in the middle of a listing the endpoint has been serving: ending the stream
        # quietly would skip the rest of it (and, for calls, move the bookmark past it).
        msg = (
            f"Amplemarket answered 404 for {exc.path} in the middle of a listing it had been "
            f"serving ({exc.detail}): stopping, so that nothing is skipped; the next run "
            "resumes from the last checkpoint"
        )
        raise APIRequestError(msg) from None

    @override
    def log_sync_costs(self) -> None:
        # The SDK's hook after every stream has synced: the place for each stream's counts.
        super().log_sync_costs()
        if self.stats.started is not None:
            self.log("%s: %s", self.name, self.stats.summary())
        if skipped := self.conformer.summary():
            self.log("%s", skipped, level=logging.WARNING)
