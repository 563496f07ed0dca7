"""A fake Amplemarket API on 127.0.0.1 for tests, benchmarks and the offline demo.

It behaves as api-facts.md documents the API: Bearer auth, `application/vnd.amp+json`,
newest-first calls with date filters, cursor pagination through root-relative
`_links.next.href`, a documented default page size and a largest one per endpoint (which a
test can set: `max_page_sizes`), required filters, `_errors` bodies for 4xx. It serves the
endpoints of its own table (endpoints.py), from sample data or, for an endpoint the sample
data leaves out, from copies of the endpoint's example (generate.py). It imports nothing
from the tap.

Faults are injected through one method, `fail_next` (the kinds are in FAULT_KINDS): 404s,
429s with any Retry-After, 503s, connection resets, bodies cut short or dripped a byte at a
time, error bodies that echo the request's Authorization header, redirects, next links
rewritten to other hosts or back to pages already served, next links and records lists in
shapes the docs do not give, and raw bytes (an interim 1xx before the page, a 304, an HTML
page). What is not a fault is set when
the fake is made: latency, a request quota, a request budget, a path prefix.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import dataclasses
import datetime
import functools
import gzip
import json
import math
import os
import re
import socket
import threading
import time
import typing as t
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.fake_api.dataset import Dataset, Record, sample_dataset
from tests.fake_api.endpoints import ENDPOINTS, UNDOCUMENTED_MAX_PAGE_SIZE, Endpoint
from tests.fake_api.generate import PARENT_ID, fill_missing

if t.TYPE_CHECKING:
    from collections.abc import Mapping

#: The documented media type of every answer.
MEDIA_TYPE = "application/vnd.amp+json"
#: Bytes a gzip bomb inflates to: past any sane client's cap on a body (the tap's is 64 MiB).
GZIP_BOMB_BYTES = 65 << 20
CALLS_PATH = "/calls"
#: Each kind of fault `fail_next` injects, and how the fake answers it.
FAULT_KINDS = {
    "400": "400 Invalid date format, on parameter start_date_from",
    "400-page-size": "400 on parameter page[size], naming no size it would take",
    "404": "404 Not found: an endpoint the key's plan lacks, or a record deleted",
    "429": "429 with Retry-After: retry_after",
    "503": "503 Try again",
    "errors-200": "200 with an _errors body and no records list",
    "errors-in-page": "the page, with an _errors list beside its records",
    "records-as": "the page, its records list replaced by `value`",
    "next-as": "the page, its _links.next replaced by `value` ('{next}' in it: the next href)",
    "gzip-bomb": "200, gzip, a few hundred KB that inflate past the tap's body cap",
    "reset": "the connection closed without an answer",
    "truncate": "the page, its Content-Length and body cut to half: invalid JSON",
    "cut": "the page with its full Content-Length, the connection closed halfway through",
    "drip": "the page, its body a byte every DRIP_SECONDS",
    "echo-400": "a 400 whose body echoes the request headers, Authorization first",
    "echo-500": "a 500 whose body echoes the request headers, Authorization first",
    "redirect": "302 to href",
    "link": (
        "the page, its next link href ({self}: this page, {first}: its first page, {next}: the "
        "next link's href, {query}: its query, with the '?')"
    ),
    "raw": "the bytes `raw` as they are, then the connection closed ({page}: the page's 200)",
}
DRIP_SECONDS = 0.05
#: Unauthenticated: how many requests each path received (not an Amplemarket endpoint).
STATS_PATH = "/_fake/requests"
CALL_FILTERS = ("user_id", "from", "to")
#: Streams whose endpoint takes a `status` filter [doc].
STATUS_FILTERED = ("users", "tasks", "sequences", "mailboxes")
#: What an unfiltered list shows when `unfiltered_hides_finished` is on: an API that lists
#: finished tasks, inactive users and archived sequences only when asked by `status`.
SHOWN_UNFILTERED = {"users": {"active"}, "tasks": {"scheduled"}, "sequences": {"active"}}
EXCLUSION_PATHS = ("/excluded-domains", "/excluded-emails")
#: The answers the docs leave open, each switched on when the fake is made (see
#: FakeAmplemarketAPI's docstring): the name, its values (the first is the default).
UNKNOWN_SWITCHES = {
    "plan_lacks": "{path: 403 | 404}: endpoints the key's plan lacks, and the status they answer",
    "entries_key": "leads | results: the key of a lead list's entries",
    "exclusion_page_param": "page[size] | size: the page-size parameter of the exclusion lists",
    "next_links_drop_filters": "False | True: next links keep only the page parameters",
    "silent_page_caps": "{path: n}: serves at most n a page, whatever page[size] asks, silently",
    "page_size_refusal": "documented | detail | plain | opaque: the shape of a page-size 400",
    "unfiltered_hides_finished": "False | True: /tasks, /users, /sequences without `status` "
    "list only scheduled tasks, active users, active sequences",
    "calls_date_filter": "one of CALLS_DATE_FILTERS: how /calls reads start_date_from/_to",
    "media_type": "application/vnd.amp+json | application/json: every answer's Content-Type",
}


class APIError(Exception):
    def __init__(self, status: int, code: str, detail: str, parameter: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.parameter = status, code, detail, parameter

    def body(self) -> Record:
        error: Record = {
            "code": self.code,
            "title": self.code.replace("_", " ").title(),
            "detail": self.detail,
        }
        if self.parameter:
            error["source"] = {"parameter": self.parameter}
        return {"_errors": [error], "object": "error"}


class PlainError(APIError):
    """An error whose body is not the documented `_errors` shape."""

    def __init__(self, status: int, body: Record) -> None:
        super().__init__(status, "", "")
        self._body = body

    def body(self) -> Record:
        return self._body


def not_found() -> APIError:
    return APIError(404, "not_found", "Not found")


@dataclasses.dataclass
class LoggedRequest:
    method: str
    path: str  # the API path, without the fake's path_prefix
    params: dict[str, str]
    at: float
    query: str = ""
    status: int = 0
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    target: str = ""  # the request target as sent: path_prefix, path and query


@dataclasses.dataclass
class Fault:
    """One `fail_next` call: which requests it answers, and how."""

    kind: str
    path: str | None  # None: requests to any path
    times: int | None  # requests still to fail (per URL if per_url); None: all of them
    after: int = 0  # matching requests to answer normally first
    per_url: bool = False
    retry_after: str = "1"
    href: str = ""
    value: t.Any = None
    raw: bytes = b""
    seen: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


#: Requests a client may send at once above the quota's steady rate.
QUOTA_BURST = 5


class TokenBucket:
    """`rate` requests a second on average, at most QUOTA_BURST at once."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = float(QUOTA_BURST)
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0 if a request may go now, else the seconds until it may (for Retry-After)."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(QUOTA_BURST, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


@functools.cache
def gzip_bomb() -> bytes:
    """Spaces, then an empty JSON object: valid, and past the tap's cap once inflated."""
    return gzip.compress(b" " * GZIP_BOMB_BYTES + b"{}", compresslevel=9)


#: How the fake reads start_date_from / start_date_to (`calls_date_filter`): the docs say
#: "after" and "before" an ISO 8601 date and nothing more (api-facts.md, section 1).
CALLS_DATE_FILTERS = {
    "exact": "instants, from <= start_date < to (the usual reading of from/to)",
    "inclusive": "instants, from <= start_date <= to",
    "exclusive": "instants, from < start_date < to (the words 'after' and 'before')",
    "mixed": "instants, from < start_date <= to",
    "days": "whole UTC days: the day of from <= the day of start_date < the day of to",
    "local:+HH:MM": "the bounds' wall-clock time read in that offset (any, up to +-14:00)",
    "text": "the stored start_date text against the bound's text, as strings",
    "ignored": "no date filter at all",
}
DAY = datetime.timedelta(days=1)


def instant(text: str) -> datetime.datetime | None:
    """The instant an ISO 8601 date-time names (naive: UTC), None if the fake cannot read it."""
    value = text.strip()
    value = value[:-1] + "+00:00" if value[-1:] in {"Z", "z"} else value
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("t", "T").replace(",", "."))
    except ValueError:
        return None
    return parsed.replace(tzinfo=parsed.tzinfo or datetime.timezone.utc)


def date_key(text: str) -> str:
    """A stored or asked start_date as a string whose order is time order (the text itself
    if the fake cannot read it: placed as text)."""
    when = instant(text)
    if when is None:
        return text
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_date_filter(kind: str) -> None:
    """Raise ValueError unless `kind` is one of CALLS_DATE_FILTERS."""
    offset = kind.removeprefix("local:")
    if kind.startswith("local:"):
        if re.fullmatch(r"[+-](0\d|1[0-3]):[0-5]\d|[+-]14:00", offset) is None:
            raise ValueError(
                f"calls_date_filter {kind!r}: local:+HH:MM up to 14 h, e.g. local:+05:30"
            )
    elif kind not in CALLS_DATE_FILTERS:
        raise ValueError(f"calls_date_filter {kind!r}: one of {', '.join(CALLS_DATE_FILTERS)}")


def date_filter(kind: str, since: str | None, until: str | None) -> t.Callable[[str], bool] | None:
    """Whether a call's start_date is asked for, under the reading `kind` (readable bounds);
    None: every call."""
    if kind == "ignored" or (since is None and until is None):
        return None
    if kind == "text":
        return lambda date: (since is None or date >= since) and (until is None or date < until)
    if kind.startswith("local:"):

        def local(text: str) -> str:  # the bound's wall-clock time, in that offset
            wall = t.cast("datetime.datetime", instant(text)).replace(tzinfo=None)
            return date_key(wall.isoformat() + kind.removeprefix("local:"))

        return _compare("exact", since and local(since), until and local(until))
    if kind == "days":

        def day(text: str) -> str:  # midnight UTC of its day
            return date_key(text)[:10] + "T00:00:00.000000Z"

        return _compare("exact", since and day(since), until and day(until), day)
    return _compare(kind, since and date_key(since), until and date_key(until))


def _compare(
    kind: str, low: str | None, high: str | None, key: t.Callable[[str], str] = date_key
) -> t.Callable[[str], bool]:
    above = {"exact": str.__ge__, "inclusive": str.__ge__}.get(kind, str.__gt__)
    below = {"inclusive": str.__le__, "mixed": str.__le__}.get(kind, str.__lt__)

    def kept(date: str) -> bool:
        value = key(date)
        return (low is None or above(value, low)) and (high is None or below(value, high))

    return kept


def replaced(value: t.Any, marker: str, text: str) -> t.Any:
    """`value` with `marker` replaced by `text` in every string it holds."""
    if isinstance(value, str):
        return value.replace(marker, text)
    if isinstance(value, list):
        return [replaced(item, marker, text) for item in value]
    if isinstance(value, dict):
        return {key: replaced(item, marker, text) for key, item in value.items()}
    return value


class FakeAmplemarketAPI:
    """The fake API server. Use as a context manager, or start() / stop().

    It serves `dataset` (made by sample_dataset if None), after adding copies of its example
    for each endpoint the dataset has no records for. `api.dataset` is read on every request:
    a record removed from (or added to) one of its lists is no longer (now) served.

    `max_page_sizes` sets the largest `page[size]` of an endpoint, by its path as in
    endpoints.py ("/calls", "/lead-lists/{lead_list_id}"): a larger one is answered 400
    with `source.parameter` "page[size]"; 0 refuses `page[size]` in any form. Unset, an
    endpoint's maximum is the documented one (/mailboxes: 20), else
    UNDOCUMENTED_MAX_PAGE_SIZE. It is a plain dict: a test may change it between runs.
    """

    def __init__(
        self,
        dataset: Dataset | None = None,
        *,
        api_key: str = "test-api-key",
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        requests_per_minute: float | None = None,
        request_budget: int | None = None,
        path_prefix: str = "",
        endpoints: tuple[Endpoint, ...] = ENDPOINTS,
        calls_by_id: bool = False,
        max_page_sizes: Mapping[str, int] | None = None,
        plan_lacks: Mapping[str, int] | None = None,
        entries_key: str = "leads",
        exclusion_page_param: str = "page[size]",
        next_links_drop_filters: bool = False,
        silent_page_caps: Mapping[str, int] | None = None,
        page_size_refusal: str = "documented",
        unfiltered_hides_finished: bool = False,
        calls_date_filter: str = "exact",
        media_type: str = MEDIA_TYPE,
    ) -> None:
        self.data = dataset if dataset is not None else sample_dataset()
        # The UNKNOWN_SWITCHES: each an answer the docs leave open.
        self.plan_lacks = dict(plan_lacks or {})
        self.entries_key = entries_key
        self.exclusion_page_param = exclusion_page_param
        self.next_links_drop_filters = next_links_drop_filters
        self.silent_page_caps = dict(silent_page_caps or {})
        self.page_size_refusal = page_size_refusal
        self.unfiltered_hides_finished = unfiltered_hides_finished
        self.media_type = media_type
        self.max_page_sizes: dict[str, int] = dict(max_page_sizes or {})
        unknown = set(self.max_page_sizes) - {endpoint.path for endpoint in endpoints}
        if unknown:
            raise ValueError(f"max_page_sizes names no endpoint's path: {sorted(unknown)}")
        #: List calls in descending id order, not newest first: an API whose order says
        #: nothing of start_date (the tap must not rely on it).
        self.calls_by_id = calls_by_id
        #: How start_date_from / start_date_to are read (CALLS_DATE_FILTERS; the docs leave
        #: it UNKNOWN). A test may change it between runs.
        self.calls_date_filter = calls_date_filter
        check_date_filter(calls_date_filter)
        fill_missing(self.data, endpoints)
        self.endpoints = endpoints
        #: Seconds added to every answer, as a real API across the internet would.
        self.latency = latency
        #: A quota enforced like a token bucket with a burst of QUOTA_BURST: 429 beyond it.
        self.quota = TokenBucket(requests_per_minute / 60) if requests_per_minute else None
        #: Answer 400 once this many requests were served: a runaway client fails, not hangs.
        self.request_budget = request_budget
        #: Served under this path, as behind a proxy (e.g. "/amplemarket"); 404 elsewhere.
        self.path_prefix = path_prefix.rstrip("/")
        self.api_key = api_key
        self.requests: list[LoggedRequest] = []
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._calls_seen: tuple[int, ...] | None = None
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------
    @property
    def dataset(self) -> Dataset:
        """The records served, by stream: mutable lists, read on every request."""
        return self.data

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeAmplemarketAPI:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the command-line server)."""
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            self._server.server_close()

    def __enter__(self) -> FakeAmplemarketAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(
        self,
        kind: str,
        times: int | None = 1,
        *,
        path: str | None = None,
        after: int = 0,
        per_url: bool = False,
        retry_after: str = "1",
        href: str = "",
        value: t.Any = None,
        raw: bytes = b"",
    ) -> None:
        """Answer requests with fault `kind` (one of FAULT_KINDS) instead of their page.

        The next `times` requests (None: every one from now on) to `path` (None: to any)
        fail, once `after` of them have been answered normally. With `per_url`, the first
        `times` requests to each distinct URL fail instead. Faults fire in the order added.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}: one of {', '.join(FAULT_KINDS)}")
        if (times is not None and times < 1) or (per_url and after):
            raise ValueError("times must be at least 1, and per_url takes no after")
        with self._lock:
            self._faults.append(
                Fault(kind, path, times, after, per_url, retry_after, href, value, raw)
            )

    def add_call(self, call: Record) -> None:
        """Log a call after the fact, as `POST /calls` does."""
        with self._lock:
            self.data.calls.append(call)

    def requests_to(self, path: str) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path == path]

    def requests_to_endpoint(self, path: str) -> list[LoggedRequest]:
        """Requests to the endpoint of `path` as endpoints.py writes it ("/lead-lists/{id}")."""
        endpoint = next(e for e in self.endpoints if e.path == path)
        return [r for r in self.requests if self.endpoint_at_or_none(r.path) == endpoint]

    def endpoint_at_or_none(self, path: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.match(path) is not None), None)

    # -- data ------------------------------------------------------------------------------
    def _index_calls(self) -> None:
        """Sort the calls again if their list changed since the last request."""
        seen = tuple(map(id, self.data.calls))
        if seen == self._calls_seen:
            return
        self._calls_seen = seen
        self._calls_asc = sorted(
            self.data.calls,
            key=lambda c: (c["id"],) if self.calls_by_id else (date_key(c["start_date"]), c["id"]),
        )
        self._call_dates = [date_key(c["start_date"]) for c in self._calls_asc]
        self._call_position = {c["id"]: i for i, c in enumerate(self._calls_asc)}

    def _take_fault(self, path: str, url: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path not in (None, path):
                    continue
                if fault.per_url:
                    fault.seen[url] += 1
                    if fault.times is None or fault.seen[url] <= fault.times:
                        return fault
                    continue
                if fault.after:
                    fault.after -= 1
                    return None
                if fault.times is not None:
                    fault.times -= 1
                    if not fault.times:
                        self._faults.remove(fault)
                return fault
        return None

    def max_page_size(self, endpoint: Endpoint) -> int:
        """The largest `page[size]` `endpoint` accepts now (0: none at all)."""
        if endpoint.path in self.max_page_sizes:
            return self.max_page_sizes[endpoint.path]
        return endpoint.max_page_size or UNDOCUMENTED_MAX_PAGE_SIZE

    def _page_size(self, params: dict[str, str], endpoint: Endpoint) -> int:
        maximum = self.max_page_size(endpoint)
        name = "page[size]"
        if endpoint.path in EXCLUSION_PATHS and self.exclusion_page_param != name:
            name = self.exclusion_page_param  # page[size] is not read: an unknown parameter
        if name not in params:
            size = min(endpoint.default_page_size, maximum or endpoint.default_page_size)
        else:
            size = self._asked_size(params[name], maximum)
        return min(size, self.silent_page_caps.get(endpoint.path, size))

    def _asked_size(self, raw: str, maximum: int) -> int:
        if maximum and raw.isdigit() and 1 <= int(raw) <= maximum:
            return int(raw)
        detail = f"Page size must be between 1 and {maximum}" if maximum else "Unknown page[size]"
        if self.page_size_refusal == "detail":  # 422, no source: only the text says it
            raise APIError(422, "unprocessable_entity", detail)
        if self.page_size_refusal == "plain":  # not the documented error shape at all
            raise PlainError(400, {"error": detail.replace("Page size", "page_size")})
        if self.page_size_refusal == "opaque":  # names neither the parameter nor a size
            raise APIError(400, "unsupported_value", "Invalid value")
        raise APIError(400, "unsupported_value", detail, "page[size]")

    def _links(self, path: str, params: dict[str, str], size: int, after: str | None) -> Record:
        query = {k: v for k, v in params.items() if k not in {"page[after]", "page[before]"}}
        if self.next_links_drop_filters:
            query = {k: v for k, v in query.items() if k.startswith("page[") or k == "size"}
        if "page[size]" in params and not self.silent_page_caps:  # echoed as asked
            query["page[size]"] = str(size)
        own = urlencode(params, safe="[]:")
        links: Record = {"self": {"href": f"{path}?{own}" if own else path}}
        if after is not None:
            next_query = urlencode({**query, "page[after]": after}, safe="[]:")
            links["next"] = {"href": f"{path}?{next_query}"}
        return links

    def _list_calls(self, endpoint: Endpoint, params: dict[str, str]) -> Record:
        self._index_calls()
        size = self._page_size(params, endpoint)
        lo, hi = 0, len(self._calls_asc)
        since, until = params.get("start_date_from"), params.get("start_date_to")
        for name, value in (("start_date_from", since), ("start_date_to", until)):
            if value is not None and instant(value) is None:
                raise APIError(400, "unsupported_value", "Invalid date format", name)
        kept = date_filter(self.calls_date_filter, since, until)
        if not self.calls_by_id and self.calls_date_filter == "exact":  # the dates bound a slice
            lo = bisect.bisect_left(self._call_dates, date_key(since)) if since else lo
            hi = bisect.bisect_left(self._call_dates, date_key(until)) if until else hi
            kept = None
        if "page[after]" in params:
            position = self._call_position.get(params["page[after]"])
            if position is None:
                raise APIError(400, "unsupported_value", "Invalid cursor", "page[after]")
            hi = min(hi, position)
        wanted = {k: params[k] for k in CALL_FILTERS if k in params}
        page: list[Record] = []
        more = False
        for index in range(hi - 1, lo - 1, -1):
            call = self._calls_asc[index]
            if any(call.get(k) != v for k, v in wanted.items()):
                continue
            if kept is not None and not kept(call["start_date"]):
                continue
            if len(page) == size:
                more = True
                break
            page.append(call)
        after = page[-1]["id"] if more else None
        return {endpoint.records_key: page, "_links": self._links(CALLS_PATH, params, size, after)}

    def _list(
        self, path: str, endpoint: Endpoint, params: dict[str, str], records: list[Record]
    ) -> Record:
        for name in endpoint.required_filters:
            if name not in params:
                raise APIError(400, "missing_field", f"{name} is required", name)
        if endpoint.cursor is None:
            return {endpoint.records_key: records, "_links": {"self": {"href": path}}}
        size = self._page_size(params, endpoint)
        matching = [
            r
            for r in records
            if isinstance(r, dict)
            and all(str(r.get(k)) == params[k] for k in endpoint.required_filters)
            and self._status_shown(endpoint, r, params.get("status"))
        ]
        cursor = endpoint.cursor
        start = 0
        if "page[after]" in params:
            keys = [r.get(cursor) for r in matching]
            if params["page[after]"] not in keys:
                raise APIError(400, "unsupported_value", "Invalid cursor", "page[after]")
            start = keys.index(params["page[after]"]) + 1
        page = matching[start : start + size]
        more = start + size < len(matching)
        after = page[-1].get(cursor) if more else None
        return {endpoint.records_key: page, "_links": self._links(path, params, size, after)}

    def _status_shown(self, endpoint: Endpoint, record: Record, status: str | None) -> bool:
        """Whether a `status` filter (or, unfiltered, the switch) lets `record` be listed."""
        if endpoint.stream not in STATUS_FILTERED:
            return True
        if status is not None:
            return record.get("status") == status
        shown = SHOWN_UNFILTERED.get(endpoint.stream)
        return not (self.unfiltered_hides_finished and shown) or record.get("status") in shown

    def _detail(
        self, path: str, endpoint: Endpoint, parent_id: str, params: dict[str, str]
    ) -> Record:
        """A parent record, with its children paged under the records key."""
        for parent in self.data[endpoint.parent or ""]:
            if parent[PARENT_ID] == parent_id:
                page = self._list(path, endpoint, params, parent[endpoint.records_key])
                header = {k: v for k, v in parent.items() if k != endpoint.records_key}
                page[self.entries_key] = page.pop(endpoint.records_key)
                return {**header, **page}
        raise not_found()

    def endpoint_at(self, path: str) -> Endpoint:
        endpoint = self.endpoint_at_or_none(path)
        if endpoint is None:
            raise not_found()
        return endpoint

    def route(self, path: str, params: dict[str, str]) -> Record:
        with self._lock:
            for endpoint in self.endpoints:
                found = endpoint.match(path)
                if found is None:
                    continue
                if endpoint.path in self.plan_lacks:  # 403 or 404: which one, UNKNOWN
                    status = self.plan_lacks[endpoint.path]
                    code = "forbidden" if status == HTTPStatus.FORBIDDEN else "not_found"
                    raise APIError(status, code, "Not available on your plan")
                if endpoint.path == CALLS_PATH:  # newest first, date filters
                    return self._list_calls(endpoint, params)
                if endpoint.detail:
                    return self._detail(path, endpoint, found[endpoint.parent_key or ""], params)
                return self._list(path, endpoint, params, self.data[endpoint.stream])
        raise not_found()

    # -- HTTP ------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else keep-alive responses stall on delayed ACKs

            logged: LoggedRequest | None = None  # the request being answered

            def log_message(self, format: str, *args: t.Any) -> None:
                """Quiet: tests read `api.requests` instead."""

            def send_response(self, code: int, message: str | None = None) -> None:
                # Logged before a byte is sent: a client that stops at this status finds it logged.
                if self.logged is not None:
                    self.logged.status = code
                super().send_response(code, message)

            def do_GET(self) -> None:
                self.logged = None  # a keep-alive connection's last request is answered
                if urlsplit(self.path).path == STATS_PATH:  # for benchmarks in other processes
                    by_path = collections.Counter(r.path for r in api.requests)
                    by_status = collections.Counter(str(r.status) for r in api.requests)
                    return self._send(
                        200,
                        {"requests_by_path": dict(by_path), "requests_by_status": dict(by_status)},
                    )
                if api.latency:
                    time.sleep(api.latency)
                logged = self._logged("GET")
                if (refused := self._refusal(logged)) is not None:
                    return self._send(refused.status, refused.body())
                wait = api.quota.take() if api.quota else 0.0
                fault = (
                    Fault("429", None, 1, retry_after=str(math.ceil(wait)))
                    if wait
                    else api._take_fault(logged.path, logged.target)
                )
                if fault is not None:
                    return self._send_fault(fault, logged)
                try:
                    body = api.route(logged.path, logged.params)
                except APIError as error:
                    return self._send(error.status, error.body())
                return self._send(200, body)

            def do_POST(self) -> None:
                """`POST /calls` logs a call; the fake takes it as given, id and date too."""
                logged = self._logged("POST")
                refused = self._refusal(logged)
                if refused is None and logged.path != CALLS_PATH:
                    refused = not_found()
                if refused is not None:
                    return self._send(refused.status, refused.body())
                call = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                api.add_call(call)
                return self._send(201, call)

            def _logged(self, method: str) -> LoggedRequest:
                split = urlsplit(self.path)
                logged = LoggedRequest(
                    method,
                    split.path.removeprefix(api.path_prefix),
                    dict(parse_qsl(split.query, keep_blank_values=True)),
                    time.monotonic(),
                    split.query,
                    headers=dict(self.headers.items()),
                    target=self.path,
                )
                with api._lock:
                    api.requests.append(logged)
                self.logged = logged
                return logged

            def _refusal(self, logged: LoggedRequest) -> APIError | None:
                """Why the request gets no page whatever its path, if it does not."""
                if not logged.target.startswith(f"{api.path_prefix}/"):
                    return not_found()
                if self.headers.get("Authorization") != f"Bearer {api.api_key}":
                    return APIError(401, "unauthorized", "Invalid API key")
                if api.request_budget is not None and len(api.requests) > api.request_budget:
                    return APIError(400, "budget_exceeded", "Fake API request budget exceeded")
                return None

            def _send(
                self,
                status: int,
                body: Record,
                headers: dict[str, str] | None = None,
                *,
                cut: str | None = None,
            ) -> None:
                payload = json.dumps(body, separators=(",", ":")).encode()
                self.send_response(status)
                self.send_header("Content-Type", api.media_type)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                declared = len(payload) // 2 if cut == "truncate" else len(payload)
                self.send_header("Content-Length", str(declared))
                self.end_headers()
                if cut == "drip":
                    self.close_connection = True
                    with contextlib.suppress(OSError):  # the client may give up first
                        for byte in payload:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(DRIP_SECONDS)
                elif cut:
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    if cut == "cut":
                        self.connection.shutdown(socket.SHUT_RDWR)
                else:
                    self.wfile.write(payload)

            def _send_fault(self, fault: Fault, logged: LoggedRequest) -> None:
                """Answer as FAULT_KINDS says."""
                if fault.kind == "404":
                    return self._send(404, not_found().body())
                if fault.kind == "429":
                    error = APIError(429, "too_many_requests", "Rate limit exceeded")
                    return self._send(429, error.body(), {"Retry-After": fault.retry_after})
                if fault.kind == "400":
                    error = APIError(
                        400, "unsupported_value", "Invalid date format", "start_date_from"
                    )
                    return self._send(400, error.body())
                if fault.kind == "400-page-size":
                    error = APIError(400, "unsupported_value", "Invalid value", "page[size]")
                    return self._send(400, error.body())
                if fault.kind == "503":
                    return self._send(503, APIError(503, "unavailable", "Try again").body())
                if fault.kind == "gzip-bomb":
                    bomb = gzip_bomb()
                    self.send_response(200)
                    self.send_header("Content-Type", MEDIA_TYPE)
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(len(bomb)))
                    self.end_headers()
                    with contextlib.suppress(OSError):  # the client stops reading
                        self.wfile.write(bomb)
                    return None
                if fault.kind == "errors-200":
                    return self._send(200, APIError(200, "internal_error", "Try again").body())
                if fault.kind.startswith("echo-"):
                    status = int(fault.kind.removeprefix("echo-"))
                    # Authorization first: within any cut a client makes of the body.
                    headers = sorted(self.headers.items(), key=lambda h: h[0] != "Authorization")
                    echoed = "\n".join(f"{k}: {v}" for k, v in headers)
                    return self._send(status, {"error": "bad request", "request": echoed})
                if fault.kind == "redirect":
                    return self._send(302, {}, {"Location": fault.href})
                if fault.kind == "raw":
                    return self._send_raw(fault.raw, logged)
                if fault.kind == "reset":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                try:
                    body = api.route(logged.path, logged.params)
                except APIError as error:
                    return self._send(error.status, error.body())
                links = body.setdefault("_links", {})
                next_href = links.get("next", {}).get("href", "")
                rewrites_next = "{next}" in fault.href or "{query}" in fault.href
                if fault.kind == "link" and rewrites_next and not next_href:
                    return self._send(200, body)  # the last page stays the last
                if fault.kind == "link":
                    first = urlencode(
                        {k: v for k, v in logged.params.items() if k != "page[after]"}, safe="[]:"
                    )
                    this_page = f"{logged.path}?{logged.query}" if logged.query else logged.path
                    query = urlsplit(next_href).query
                    href = fault.href.format(
                        self=this_page,
                        first=f"{logged.path}?{first}",
                        next=next_href,
                        query=f"?{query}",
                    )
                    links["next"] = {"href": href}
                    return self._send(200, body)
                if fault.kind == "next-as":
                    links["next"] = replaced(fault.value, "{next}", next_href)
                    return self._send(200, body)
                if fault.kind == "records-as":
                    body[api.endpoint_at(logged.path).records_key] = fault.value
                    return self._send(200, body)
                if fault.kind == "errors-in-page":
                    body.update(APIError(200, "internal_server_error", "Try again").body())
                    return self._send(200, body)
                return self._send(200, body, cut=fault.kind)

            def _send_raw(self, raw: bytes, logged: LoggedRequest) -> None:
                if b"{page}" in raw:
                    payload = json.dumps(api.route(logged.path, logged.params)).encode()
                    # It says the connection closes, as it does: a client must not reuse it.
                    page = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amp+json\r\n"
                    page += b"Connection: close\r\n"
                    page += b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
                    raw = raw.replace(b"{page}", page)
                self.close_connection = True
                with contextlib.suppress(OSError):  # the client may give up first
                    self.wfile.write(raw)

        return Handler


def main() -> None:
    """Serve the fake API until interrupted: `python -m tests.fake_api --calls 2000`."""
    parser = argparse.ArgumentParser(
        description=(
            "Serve a fake Amplemarket API with sample data on 127.0.0.1, for trying the tap "
            "offline: point api_url at the URL it prints, with api_key set to --api-key."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--url-file", help="write the URL here once listening (for scripts)")
    parser.add_argument("--calls", type=int, default=1000, help="calls to serve")
    parser.add_argument("--days", type=float, default=90, help="days the calls span")
    parser.add_argument("--api-key", default="demo-api-key", help="the key it accepts")
    parser.add_argument("--end", default="now", help="ISO 8601 time of the newest call")
    parser.add_argument("--workdays", action="store_true", help="calls in working hours only")
    parser.add_argument("--burst", type=int, default=0, help="calls more on the middle day")
    parser.add_argument(
        "--burst-seconds", type=int, default=9 * 3600, help="seconds the burst is spread over"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to answers")
    parser.add_argument("--quota", type=float, help="requests per minute, 429 beyond")
    parser.add_argument(
        "--calls-date-filter",
        default="exact",
        help=f"how start_date_from/_to are read: {', '.join(CALLS_DATE_FILTERS)}",
    )
    args = parser.parse_args()
    end = (
        datetime.datetime.fromisoformat(args.end.replace("Z", "+00:00"))
        if args.end != "now"
        else datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    )
    try:
        api = FakeAmplemarketAPI(
            sample_dataset(
                args.calls,
                days=args.days,
                end=end,
                workdays=args.workdays,
                burst=args.burst,
                burst_seconds=args.burst_seconds,
            ),
            api_key=args.api_key,
            port=args.port,
            latency=args.latency,
            requests_per_minute=args.quota,
            calls_date_filter=args.calls_date_filter,
        )
    except OSError as exc:
        raise SystemExit(
            f"fake API: cannot listen on 127.0.0.1:{args.port} ({exc.strerror}): pass --port 0 "
            "for any free port"
        ) from None
    print(f"Fake Amplemarket API on {api.url} (api_key={args.api_key!r})", flush=True)
    if args.url_file:  # whole or not at all: a script waits for it to appear
        with open(f"{args.url_file}.part", "w", encoding="utf-8") as file:
            file.write(api.url + "\n")
        os.replace(f"{args.url_file}.part", args.url_file)
    api.serve_forever()


if __name__ == "__main__":
    main()
