"""A fake Amplemarket API on 127.0.0.1 for tests, benchmarks and the offline demo.

It behaves like the documented API: Bearer auth, newest-first calls with date filters,
cursor pagination through relative `_links.next.href`, `_errors` bodies for 4xx, and it
can inject faults (`fail_next`): 429 with any Retry-After, 503, connection resets, bodies cut
short or dripped a byte at a time, error bodies that echo the request's Authorization
header, redirects, and next links rewritten to other hosts or back to pages already served.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import dataclasses
import datetime
import json
import math
import socket
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from typing_extensions import override

from tap_amplemarket.fake_api.dataset import Dataset, Record, sample_dataset
from tap_amplemarket.timefmt import isoformat_z, parse_timestamp

DEFAULT_PAGE_SIZE = 20
FAULT_KINDS = (
    "400",
    "429",
    "503",
    "reset",
    "truncate",
    "cut",
    "drip",  # headers, then the body one byte every DRIP_SECONDS
    "echo-400",  # a 400 whose body echoes the request headers, Authorization included
    "echo-500",
    "redirect",  # 302 to `href`
    "link",  # a normal page whose next link is `href` ({self}: this page, {first}: page 1)
)
DRIP_SECONDS = 0.05


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


@dataclasses.dataclass(frozen=True)
class Collection:
    """A plain list endpoint: records in a fixed order, cursor = the record's `cursor_field`."""

    key: str
    cursor_field: str = "id"
    max_page_size: int = 100
    filters: tuple[str, ...] = ()
    required: tuple[str, ...] = ()


COLLECTIONS = {
    "/calls/dispositions": Collection("dispositions", max_page_size=0),
    "/users": Collection("users", filters=("status", "role", "email")),
    "/tasks": Collection("tasks", filters=("user_id", "status", "type"), required=("user_id",)),
    "/sequences": Collection("sequences", filters=("status",)),
    "/mailboxes": Collection("mailboxes", max_page_size=20),
    "/lead-lists": Collection("lead_lists"),
    "/excluded-domains": Collection("excluded_domains", cursor_field="domain"),
    "/excluded-emails": Collection("excluded_emails", cursor_field="email"),
    "/accounts": Collection("accounts"),
}
CALL_FILTERS = ("user_id", "from", "to")
#: Unauthenticated: how many requests each path received (not an Amplemarket endpoint).
STATS_PATH = "/_fake/requests"


@dataclasses.dataclass
class LoggedRequest:
    method: str
    path: str
    params: dict[str, str]
    at: float
    query: str = ""
    status: int = 0
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Fault:
    kind: str
    path: str | None
    retry_after: str
    skip: int = 0  # matching requests to let through before this fault fires
    href: str = ""


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


def parse_date_param(name: str, value: str) -> str:
    try:
        parsed = parse_timestamp(value)
    except ValueError:
        raise APIError(400, "unsupported_value", "Invalid date format", name) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return isoformat_z(parsed)


class FakeAmplemarketAPI:
    """The fake API server. Use as a context manager, or start() / stop()."""

    def __init__(
        self,
        dataset: Dataset | None = None,
        *,
        api_key: str = "test-api-key",
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        requests_per_minute: float | None = None,
    ) -> None:
        self.data = dataset if dataset is not None else sample_dataset()
        #: Seconds added to every answer, as a real API across the internet would.
        self.latency = latency
        #: A quota enforced like a token bucket with a burst of QUOTA_BURST: 429 beyond it.
        self.quota = TokenBucket(requests_per_minute / 60) if requests_per_minute else None
        self.api_key = api_key
        self.requests: list[LoggedRequest] = []
        self.faults: collections.deque[Fault] = collections.deque()
        #: Every distinct request URL is answered 429 this many times before it succeeds.
        self.rate_limit_first_attempts = 0
        self.rate_limit_retry_after = "1"
        self.unavailable_paths: set[str] = set()
        #: Answer 400 once this many requests were served: a runaway client fails, not hangs.
        self.request_budget: int | None = None
        self._attempts: collections.Counter[str] = collections.Counter()
        self._lock = threading.RLock()
        self._index_calls()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------
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
        times: int = 1,
        *,
        path: str | None = None,
        retry_after: str = "1",
        after: int = 0,
        href: str = "",
    ) -> None:
        """Answer `times` requests (to `path`, if given) with fault `kind`, `after` others."""
        if kind not in FAULT_KINDS:
            raise ValueError(kind)
        with self._lock:
            self.faults.extend(
                Fault(kind, path, retry_after, skip=after if i == 0 else 0, href=href)
                for i in range(times)
            )

    def add_call(self, call: Record) -> None:
        """Log a call after the fact, as `POST /calls` would."""
        with self._lock:
            self.data.calls.append(call)
            self._index_calls()

    def requests_to(self, path: str) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path == path]

    # -- data ------------------------------------------------------------------------------
    def _index_calls(self) -> None:
        self._calls_asc = sorted(self.data.calls, key=lambda c: (c["start_date"], c["id"]))
        self._call_dates = [c["start_date"] for c in self._calls_asc]
        self._call_position = {c["id"]: i for i, c in enumerate(self._calls_asc)}

    def _take_fault(self, path: str, url: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.path in (None, path):
                    if fault.skip:
                        fault.skip -= 1
                        break
                    self.faults.remove(fault)
                    return fault
            if self.rate_limit_first_attempts:
                self._attempts[url] += 1
                if self._attempts[url] <= self.rate_limit_first_attempts:
                    return Fault("429", path, self.rate_limit_retry_after)
        return None

    def _page_size(self, params: dict[str, str], maximum: int) -> int:
        raw = params.get("page[size]", str(DEFAULT_PAGE_SIZE))
        if not raw.isdigit() or not 1 <= int(raw) <= maximum:
            raise APIError(
                400, "unsupported_value", f"Page size must be between 1 and {maximum}", "page[size]"
            )
        return int(raw)

    @staticmethod
    def _links(path: str, params: dict[str, str], size: int, after: str | None) -> Record:
        query = {k: v for k, v in params.items() if k not in {"page[after]", "page[before]"}}
        query["page[size]"] = str(size)
        links: Record = {"self": {"href": f"{path}?{urlencode(params, safe='[]:')}"}}
        if after is not None:
            next_query = urlencode({**query, "page[after]": after}, safe="[]:")
            links["next"] = {"href": f"{path}?{next_query}"}
        return links

    def _list_calls(self, params: dict[str, str]) -> Record:
        size = self._page_size(params, 100)
        lo, hi = 0, len(self._calls_asc)
        if "start_date_from" in params:
            lo = bisect.bisect_left(
                self._call_dates, parse_date_param("start_date_from", params["start_date_from"])
            )
        if "start_date_to" in params:
            hi = bisect.bisect_left(
                self._call_dates, parse_date_param("start_date_to", params["start_date_to"])
            )
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
            if len(page) == size:
                more = True
                break
            page.append(call)
        after = page[-1]["id"] if more else None
        return {"calls": page, "_links": self._links("/calls", params, size, after)}

    def _list(
        self, path: str, spec: Collection, params: dict[str, str], records: list[Record]
    ) -> Record:
        for name in spec.required:
            if name not in params:
                raise APIError(400, "missing_field", f"{name} is required", name)
        if not spec.max_page_size:
            return {spec.key: records, "_links": {"self": {"href": path}}}
        size = self._page_size(params, spec.max_page_size)
        matching = [
            r
            for r in records
            if all(str(r.get(k)) == params[k] for k in spec.filters if k in params)
        ]
        start = 0
        if "page[after]" in params:
            keys = [r[spec.cursor_field] for r in matching]
            if params["page[after]"] not in keys:
                raise APIError(400, "unsupported_value", "Invalid cursor", "page[after]")
            start = keys.index(params["page[after]"]) + 1
        page = matching[start : start + size]
        more = start + size < len(matching)
        after = page[-1][spec.cursor_field] if more else None
        return {spec.key: page, "_links": self._links(path, params, size, after)}

    def _lead_list(self, list_id: str, params: dict[str, str]) -> Record:
        for lead_list in self.data.lead_lists:
            if lead_list["id"] == list_id:
                page = self._list(
                    f"/lead-lists/{list_id}", Collection("leads"), params, lead_list["leads"]
                )
                header = {k: v for k, v in lead_list.items() if k != "leads"}
                return {**header, **page}
        raise APIError(404, "not_found", "Lead list not found")

    def route(self, path: str, params: dict[str, str]) -> Record:
        if path in self.unavailable_paths:
            raise APIError(404, "not_found", "Not found")
        with self._lock:
            if path == "/calls":
                return self._list_calls(params)
            if path == "/account-info":
                return dict(self.data.account_info)
            if path in COLLECTIONS:
                spec = COLLECTIONS[path]
                return self._list(path, spec, params, getattr(self.data, spec.key))
            if path.startswith("/lead-lists/"):
                return self._lead_list(path.removeprefix("/lead-lists/"), params)
        raise APIError(404, "not_found", "Not found")

    # -- HTTP ------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else keep-alive responses stall on delayed ACKs

            @override
            def log_message(self, format: str, *args: t.Any) -> None:
                """Quiet: tests read `api.requests` instead."""

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                if split.path == STATS_PATH:  # for benchmarks that run the server elsewhere
                    by_path = collections.Counter(r.path for r in api.requests)
                    by_status = collections.Counter(str(r.status) for r in api.requests)
                    return self._send(
                        200,
                        {"requests_by_path": dict(by_path), "requests_by_status": dict(by_status)},
                    )
                if api.latency:
                    time.sleep(api.latency)
                params = dict(parse_qsl(split.query, keep_blank_values=True))
                logged = LoggedRequest(
                    "GET",
                    split.path,
                    params,
                    time.monotonic(),
                    split.query,
                    headers=dict(self.headers.items()),
                )
                with api._lock:
                    api.requests.append(logged)
                if self.headers.get("Authorization") != f"Bearer {api.api_key}":
                    error = APIError(401, "unauthorized", "Invalid API key")
                    logged.status = 401
                    return self._send(401, error.body())
                if api.request_budget is not None and len(api.requests) > api.request_budget:
                    error = APIError(400, "budget_exceeded", "Fake API request budget exceeded")
                    logged.status = 400
                    return self._send(400, error.body())
                wait = api.quota.take() if api.quota else 0.0
                fault = (
                    Fault("429", split.path, str(math.ceil(wait)))
                    if wait
                    else api._take_fault(split.path, self.path)
                )
                if fault is not None:
                    logged.status = self._send_fault(fault)
                    return None
                try:
                    body = api.route(split.path, params)
                except APIError as error:
                    logged.status = error.status
                    return self._send(error.status, error.body())
                logged.status = 200
                return self._send(200, body)

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
                self.send_header("Content-Type", "application/json")
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

            def _send_fault(self, fault: Fault) -> int:
                if fault.kind == "429":
                    error = APIError(429, "too_many_requests", "Rate limit exceeded")
                    self._send(429, error.body(), {"Retry-After": fault.retry_after})
                    return 429
                if fault.kind == "400":
                    error = APIError(
                        400, "unsupported_value", "Invalid date format", "start_date_from"
                    )
                    self._send(400, error.body())
                    return 400
                if fault.kind == "503":
                    self._send(503, APIError(503, "unavailable", "Try again").body())
                    return 503
                if fault.kind.startswith("echo-"):
                    status = int(fault.kind.removeprefix("echo-"))
                    echoed = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
                    self._send(status, {"error": "bad request", "request": echoed})
                    return status
                if fault.kind == "redirect":
                    self._send(302, {}, {"Location": fault.href})
                    return 302
                if fault.kind == "reset":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return 0
                split = urlsplit(self.path)
                params = dict(parse_qsl(split.query, keep_blank_values=True))
                body = api.route(split.path, params)
                if fault.kind == "link":
                    first = urlencode(
                        {k: v for k, v in params.items() if k != "page[after]"}, safe="[]:"
                    )
                    href = fault.href.format(self=self.path, first=f"{split.path}?{first}")
                    body["_links"]["next"] = {"href": href}
                    self._send(200, body)
                else:
                    self._send(200, body, cut=fault.kind)
                return 200

        return Handler


def main() -> None:
    """Serve the fake API until interrupted: `tap-amplemarket-fake-api --calls 2000`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--days", type=float, default=90)
    parser.add_argument("--api-key", default="demo-api-key")
    parser.add_argument("--end", help="ISO 8601 time of the newest call (default: now)")
    parser.add_argument("--workdays", action="store_true", help="calls in working hours only")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to answers")
    parser.add_argument("--quota", type=float, help="requests per minute (429 beyond)")
    args = parser.parse_args()
    end = (
        parse_timestamp(args.end)
        if args.end
        else datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    )
    api = FakeAmplemarketAPI(
        sample_dataset(args.calls, days=args.days, end=end, workdays=args.workdays),
        api_key=args.api_key,
        port=args.port,
        latency=args.latency,
        requests_per_minute=args.quota,
    )
    print(f"Fake Amplemarket API on {api.url} (api_key={args.api_key!r})", flush=True)
    api.serve_forever()


if __name__ == "__main__":
    main()
