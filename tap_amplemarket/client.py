"""Shared REST behaviour of every Amplemarket stream: auth, paging, retries, errors."""

from __future__ import annotations

import logging
import typing as t
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urljoin

import backoff
import msgspec
import requests
from singer_sdk import RESTStream, SchemaDirectory, StreamSchema
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseHATEOASPaginator
from typing_extensions import override

from tap_amplemarket import schemas
from tap_amplemarket.conform import Conformer, with_extra_column
from tap_amplemarket.errors import (
    APIRequestError,
    AuthenticationError,
    EndpointNotAvailableError,
    RateLimitedError,
    describe_api_errors,
    parse_retry_after,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterable
    from urllib.parse import ParseResult

    from singer_sdk.helpers.types import Context, RequestFunc
    from singer_sdk.schema.source import Schema
    from singer_sdk.streams.rest import HTTPRequest, PageContext

    from tap_amplemarket.throttle import RequestsPerMinuteLimiter

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
    except msgspec.DecodeError as exc:
        msg = f"Response from {where} is not valid JSON ({exc})"
        raise RetriableAPIError(msg, response) from exc
    if not isinstance(body, dict):
        msg = f"Response from {where} is not a JSON object"
        raise RetriableAPIError(msg, response)
    response.__dict__[_BODY_CACHE_KEY] = body
    return body


def link_url(url_base: str, href: str) -> str:
    """The URL of an API link. Links are root-relative ("/calls?..."): they are kept under
    api_url's own path, so an api_url behind a path-prefixed proxy keeps working."""
    if href.startswith("/") and not href.startswith("//"):
        return url_base + href
    return urljoin(url_base + "/", href)


class NextLinkPaginator(BaseHATEOASPaginator):
    """Follows `_links.next.href`, which already carries every filter and the cursor."""

    def get_next_url(self, response: requests.Response) -> str | None:
        links = json_body(response).get("_links") or {}
        next_link = links.get("next") or {}
        return next_link.get("href") if isinstance(next_link, dict) else None


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
    #: True where a 404 for one parent record means that record was deleted since it was
    #: listed (skip it), not that the plan lacks the endpoint (skip the stream).
    partition_404_means_deleted: t.ClassVar[bool] = False
    #: First retry waits about this many seconds, doubling up to a minute.
    backoff_factor: t.ClassVar[float] = 2.0
    # The SDK's per-value pass was half the run time and drops what does not fit: instead
    # `post_process` conforms each record once (conform.py), keeping the misfits in `_extra`.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.pages_read = 0
        self.endpoint_unavailable = False
        # Honour HTTP(S)_PROXY/NO_PROXY, but read them once: requests otherwise rescans the
        # whole environment on every send (15% of a sync's CPU). Every URL is on url_base.
        session = self.requests_session
        session.proxies.update(requests.utils.get_environ_proxies(self.url_base))
        session.trust_env = False

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

    @property
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @cached_property
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.config["api_key"])

    @property
    def http_headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    @property
    def timeout(self) -> int:
        return int(self.config.get("request_timeout", 60))

    @property
    def page_size(self) -> int | None:
        if self.max_page_size is None:
            return None
        return min(int(self.config.get("page_size", 100)), self.max_page_size)

    @property
    def rate_limiter(self) -> RequestsPerMinuteLimiter:
        # One limiter per tap: the API's quota is per key, shared by all streams.
        return self._tap.rate_limiter  # type: ignore[attr-defined,no-any-return]

    def get_new_paginator(self) -> NextLinkPaginator:
        return NextLinkPaginator()

    def get_url_params(
        self,
        context: Context | None,
        next_page_token: ParseResult | None,
    ) -> dict[str, t.Any]:
        params = self.filter_params(context)
        if self.page_size is not None:
            params["page[size]"] = self.page_size
        return params

    def get_child_context(
        self, record: dict[str, t.Any], context: Context | None
    ) -> Context | None:
        if self.child_context_key is None:
            return super().get_child_context(record, context)
        return {self.child_context_key: record["id"]}

    def filter_params(self, context: Context | None) -> dict[str, t.Any]:
        """Query filters of the first page; later pages reuse them through the next link."""
        return {}

    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        request = super().get_http_request(page=page)
        if page.next_page_token is not None:
            # The next link is complete (filters, size, cursor): do not append params again.
            request.url = link_url(self.url_base, page.next_page_token.geturl())
            request.params = {}
        return request

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
            msg = f"Amplemarket rejected the API key ({status}): check api_key"
            raise AuthenticationError(msg)
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                raise RateLimitedError(retry_after, self.path or "")
        elif status == HTTPStatus.NOT_FOUND:
            msg = (
                f"Amplemarket answered 404 for {self.path} ({describe_api_errors(response)}): "
                "this key's plan may not include it"
            )
            raise EndpointNotAvailableError(msg)
        elif HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR:
            msg = (
                f"Amplemarket rejected GET {self.path} ({status}): "
                f"{describe_api_errors(response)}: check the tap settings behind that parameter"
            )
            raise APIRequestError(msg)
        super().validate_response(response)  # 5xx and 429 without Retry-After: retriable
        json_body(response)

    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        # Every attempt passes the limiter; 429 with Retry-After waits exactly that long with
        # no try limit (the API says when to come back); other faults get the SDK's backoff.
        limiter = self.rate_limiter

        def throttled(*args: t.Any, **kwargs: t.Any) -> requests.Response:
            limiter.acquire()
            return func(*args, **kwargs)

        with_backoff = super().request_decorator(throttled)
        return backoff.on_exception(
            backoff.runtime,
            RateLimitedError,
            value=lambda exc: exc.retry_after,
            max_tries=None,
            jitter=None,
            on_backoff=self._log_rate_limited,
            logger=None,
        )(with_backoff)

    def _log_rate_limited(self, details: t.Any) -> None:
        self.log("%s (attempt %d)", details["exception"], details["tries"], level=logging.WARNING)

    def backoff_wait_generator(self) -> t.Generator[float, None, None]:
        return backoff.expo(factor=self.backoff_factor, max_value=60)

    def backoff_handler(self, details: t.Any) -> None:
        # Name the real cause: the SDK's line says "status 200: OK" for a broken body.
        self.log(
            "Retrying %s in %.2fs after attempt %d: %s",
            self.path,
            details.get("wait", 0),
            details["tries"],
            details.get("exception"),
            level=logging.WARNING,
        )

    def backoff_max_tries(self) -> int:
        return int(self.config.get("max_retries", 8))

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        records = json_body(response).get(self.records_key or self.name) or []
        if not isinstance(records, list):
            records = [records]
        self.pages_read += 1
        self.log("%s: page %d, %d records", self.name, self.pages_read, len(records))
        for record in records:
            if isinstance(record, dict):
                yield record
            else:
                self.conformer.skip()  # not an object: nothing to upsert

    @override
    def post_process(
        self, row: dict[str, t.Any], context: Context | None = None
    ) -> dict[str, t.Any] | None:
        return self.conformer(row)

    @override
    def log_sync_costs(self) -> None:
        # Called once per stream at the end of a sync: the place for a stream's counts.
        super().log_sync_costs()
        if summary := self.conformer.summary():
            self.log("%s", summary, level=logging.WARNING)

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        if self.endpoint_unavailable:
            return
        try:
            yield from super().get_records(context)
        except EndpointNotAvailableError as exc:
            if self.partition_404_means_deleted and context:
                self.log("%s: skipping %s, deleted since listed", self.name, context)
                return
            # Warn once and skip: one endpoint missing from a plan must not fail the sync.
            self.endpoint_unavailable = True
            self.log("Skipping stream %s: %s", self.name, exc, level=logging.WARNING)
