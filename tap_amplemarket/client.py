"""The stream base: the SDK hooks every Amplemarket stream shares, and what a 404 means.

Each hook hands its work to a module of one concern: responses.py (what an answer means),
sending.py (retries, pacing, page size), paging.py (next links), deletions.py
(ACTIVATE_VERSION), windowed.py (date windows), conform.py (records).
"""

from __future__ import annotations

import itertools
import logging
import sys
import typing as t
from functools import cached_property
from urllib.parse import quote, urlsplit

import backoff
import requests
from singer_sdk import StreamSchema
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_amplemarket import schemas
from tap_amplemarket.conform import Conformer
from tap_amplemarket.deadline import DeadlineSession
from tap_amplemarket.deletions import DeletionMarkingStream
from tap_amplemarket.errors import APIRequestError, EndpointNotAvailableError, PlanForbiddenError
from tap_amplemarket.first_contact import CONNECTION_TEST_TIMEOUT
from tap_amplemarket.http import json_body
from tap_amplemarket.paging import NextLinkPaginator, PageSizing
from tap_amplemarket.progress import StreamStats, partition_name, plural
from tap_amplemarket.responses import (
    adopt_alias,
    check_page,
    cut_short,
    refuse_unless_served,
    status_line,
)
from tap_amplemarket.sending import Sender
from tap_amplemarket.windowed import read_windowed

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from urllib.parse import ParseResult

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, RequestFunc
    from singer_sdk.streams.rest import HTTPRequest, PageContext

    from tap_amplemarket.run_context import RunContext
    from tap_amplemarket.windows import DateWindows


#: Parents a child endpoint answers 404 for, before it has answered any, that say the key's
#: plan lacks it (fewer may be parents deleted since they were listed).
PARENTS_NOT_FOUND_FOR_PLAN = 3


class AmplemarketStream(DeletionMarkingStream["ParseResult | None"]):
    """One Amplemarket list endpoint: `GET path` -> `{records_key: [...], "_links": {...}}`."""

    primary_keys: t.ClassVar[tuple[str, ...]] = ("id",)
    #: `schemas/<stream name>.json` plus `_extra`
    schema = StreamSchema(schemas.SchemaFiles(schemas))
    #: Top-level key of the response that holds the records, if not the stream's name.
    records_key: t.ClassVar[str | None] = None
    #: Other keys the records may come under, where the docs disagree with themselves.
    records_key_aliases: t.ClassVar[tuple[str, ...]] = ()
    #: Largest `page[size]` the endpoint accepts; `None` if the endpoint is not paginated.
    max_page_size: t.ClassVar[int | None] = 100
    #: The key under which each record's id is handed to child streams (e.g. "user_id").
    child_context_key: t.ClassVar[str | None] = None
    #: Top-level fields the API sends that are not data, or are loaded elsewhere by design:
    #: dropped silently. Per-record `_links` (links to the record in the API) are documented
    #: on sequences, lead lists and exclusions, and shown on a mailbox.
    ignored_fields: t.ClassVar[tuple[str, ...]] = ("_links",)
    #: Set on a stream read in date windows (windows.py): its filters, first window, lookback.
    date_windows: t.ClassVar[DateWindows | None] = None
    #: First retry waits about this many seconds, doubling up to a minute.
    backoff_factor: t.ClassVar[float] = 2.0
    # A redirect would take the key wherever it points: 3xx is reported, never followed.
    allow_redirects = False
    # The SDK's per-value pass was half the run time and drops what does not fit: instead
    # `post_process` conforms each record once (conform.py), keeping the misfits in `_extra`.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    # A STATE only where it is a resume point: past a prefix of date windows (windowed.py).
    STATE_MSG_FREQUENCY = sys.maxsize

    def __init__(self, tap: Tap, run_context: RunContext) -> None:
        """A stream of `tap`'s run, sharing `run_context` with the run's other streams."""
        #: The limiter, in-flight bound and API answers this run's streams share.
        self.run_context = run_context
        super().__init__(tap)
        self.stats = StreamStats()
        #: The page size this endpoint is asked for, and its fallback when refused; made
        #: here, before any thread reading date windows can reach it.
        self.page_sizing = PageSizing(int(self.config["page_size"]), self.max_page_size)
        run_context.tally.add(self.stats)
        self._parents_not_found = 0  # 404s for parents before the endpoint answered any
        self._noted: set[str] = set()  # what its paginators have logged once
        #: The key the records came under, if one of `records_key_aliases` (noted once).
        self.records_key_alias: str | None = None

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
        """What fits this stream's records to its effective schema.

        Built on first use: by then a catalog given on the command line has been applied.
        """
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
        setting = int(self.config["request_timeout"])
        return min(setting, CONNECTION_TEST_TIMEOUT) if self.connection_test else setting

    @property
    def connection_test(self) -> bool:
        """Whether this run only tests the connection.

        That is `--test` or Airbyte's `check`, which set ABORT_AT_RECORD_COUNT: it must
        answer within FIRST_CONTACT_SECONDS, so it never waits out a 429.
        """
        return self.ABORT_AT_RECORD_COUNT is not None

    @property
    def page_size(self) -> int | None:
        """Records per page now (see PageSizing)."""
        return self.page_sizing.size

    @override
    def get_new_paginator(self) -> NextLinkPaginator:
        return NextLinkPaginator(
            stream=self.name,
            path=self.path or "",
            api_url=self.url_base,
            records_key=self.records_key or self.name,
            key_fields=self.primary_keys,
            max_pages=int(self.config["max_pages_per_partition"]),
            logger=self.logger,
            noted=self._noted,
        )

    @override
    def get_url_params(
        self,
        context: Context | None,
        next_page_token: ParseResult | None,
    ) -> dict[str, t.Any]:
        params = self.filter_params(context)
        if (size := self.page_sizing.param) is not None:
            params["page[size]"] = size
        return params

    @override
    def get_child_context(
        self, record: dict[str, t.Any], context: Context | None
    ) -> Context | None:
        if self.child_context_key is None:
            return super().get_child_context(record, context)
        return {self.child_context_key: record["id"]}

    def filter_params(self, context: Context | None) -> dict[str, t.Any]:
        """Query filters of the first page: what the context holds that the path does not.

        That is a parent's id or a date window; later pages reuse them through the next link.
        """
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
        key, path = self.records_key or self.name, self.path or ""
        answers = self.run_context.answers
        refuse_unless_served(
            response, path, self.url_base, answers, connection_test=self.connection_test
        )
        super().validate_response(response)  # 5xx: retriable
        alias = adopt_alias(response, key, self.records_key_aliases)
        if alias is not None and self.records_key_alias is None:  # once: an answer docs allow
            self.records_key_alias = alias
            self.log("%s: GET %s lists its records under %r, not %r", self.name, path, alias, key)
        check_page(response, key, path)

    @override
    def response_error_message(self, response: requests.Response) -> str:
        return status_line(response.status_code, self.path or "")

    @override
    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        # One loop for every fault (see sending.py), every attempt through the shared limiter.
        # A Sender per listing: it holds no state of its own, so threads need not share one.
        return Sender(
            stream=self.name,
            path=self.path or "",
            api_url=self.url_base,
            timeout=self.timeout,
            run=self.run_context,
            page_sizing=self.page_sizing,
            stats=self.stats,
            logger=self.logger,
            max_attempts=int(self.config["max_retries"]),
            waits=self._backoff_waits,
            connection_test=self.connection_test,
        ).wrap(func)

    def _backoff_waits(self) -> Iterator[float]:
        waits = itertools.islice(self.backoff_wait_generator(), 1, None)  # skip the priming 0
        return (self.backoff_jitter(wait) for wait in waits)

    @override
    def backoff_wait_generator(self) -> t.Generator[float, None, None]:
        return backoff.expo(factor=self.backoff_factor, max_value=60)

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
            return read_windowed(self)
        return self.request_records(context)

    @property
    @override
    def is_sorted(self) -> bool:
        # Resumable: the bookmark moves past date windows read to their end (windowed.py).
        return self.date_windows is not None

    @property
    @override
    def check_sorted(self) -> bool:
        # The bookmark is set at each checkpoint, not from records (a lookback re-reads
        # older ones, and the SDK compares them as text): see windowed.py.
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
            if context is not None:  # a line per partition at DEBUG; the stream has its summary
                self.log(
                    "%s %s: %s in %s",
                    self.name,
                    partition_name(context),
                    plural(self.stats.records - records, "record"),
                    plural(self.stats.pages - pages, "page"),
                    level=logging.DEBUG,  # the stream's summary counts them all
                )
        except EndpointNotAvailableError as exc:
            self._skip_or_raise(exc, context, partition_pages=self.stats.pages - pages)
        except PlanForbiddenError as exc:
            self._skip_forbidden(exc)
        finally:
            self.stats.finish()
            if not read and self.incomplete_reason is None:  # failed, or stopped by its consumer
                self.incomplete_reason = (
                    f"{partition_name(context) or 'it'} was not read to its end"
                )
        if read and context is None:  # a stream of its own: its one partition is read
            self.end_read()

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
                self.incomplete_reason = self.incomplete_reason or f"{where} answered 404"
                return
        if self.stats.pages > 0:
            raise cut_short(exc.path, 404, exc.detail) from None
        if (error := self.run_context.answers.missing_at(exc.path)) is not None:
            raise error from None
        self._skip_stream(exc, "or api_url is wrong, if other streams say so")

    def _skip_forbidden(self, exc: PlanForbiddenError) -> None:
        """A 403 before the endpoint served a page skips the stream; after, it stops."""
        if self.stats.pages > 0:
            raise cut_short(exc.path, 403) from None
        self._skip_stream(exc, "or the key has no API access, if others say so")

    def _skip_stream(self, exc: APIRequestError, other_cause: str) -> None:
        # Warn once and skip: one endpoint missing from a plan must not fail the sync.
        self.endpoint_unavailable = True
        self.incomplete_reason = "the key's plan lacks it"
        doubt = "" if self.run_context.answers.answered else f" ({other_cause})"
        self.log("Skipping stream %s: %s%s", self.name, exc, doubt, level=logging.WARNING)

    @override
    def log_sync_costs(self) -> None:
        # The SDK's hook after every stream has synced: the place for each stream's counts.
        super().log_sync_costs()
        if self.stats.started is not None:
            self.log("%s: %s", self.name, self.stats.summary())
        if skipped := self.conformer.summary():
            self.log("%s", skipped, level=logging.WARNING)
        if (total := self.run_context.tally.total_after_one()) is not None:
            logging.getLogger(self.tap_name).info("Sync done: %s", total)
