"""Paging through an Amplemarket listing: next links, and the page size an endpoint takes.

The docs: cursor pages through `page[size]`, `page[after]`, and `_links.next.href`, which the
client should follow. They leave open the largest page each endpoint takes, the shape of a
refusal, and whether a next link keeps every filter of the first request: here the tap copes
with each plausible answer (a smaller page; the filter put back).
"""

from __future__ import annotations

import json
import re
import threading
import typing as t
from http import HTTPStatus
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from singer_sdk.pagination import BaseHATEOASPaginator
from typing_extensions import override

from tap_amplemarket.errors import APIRequestError
from tap_amplemarket.http import (
    UnreadableBodyError,
    decode_json,
    describe_api_errors,
    json_body,
    link_url,
)
from tap_amplemarket.secrets import redacted

if t.TYPE_CHECKING:
    import logging

    import requests

#: Pages in a row that link on but hold no record not read before, after which paging stops.
MAX_PAGES_WITH_NOTHING_NEW = 5
#: The page size every example of the docs shows as the default, and /mailboxes' maximum:
#: what the tap falls back to when an endpoint refuses the size it asked for.
DOCUMENTED_DEFAULT_PAGE_SIZE = 20
#: Names a refusal may give the page size under (the exclusion lists' example says `size`).
PAGE_SIZE_PARAMETERS = frozenset({"page[size]", "size", "page_size", "per_page"})
#: Text that names the page size: "page[size]", "page size", "page_size".
PAGE_SIZE_WORDS = re.compile(r"page[\s_\[]*size", re.IGNORECASE)

Query = tuple[tuple[str, str], ...]


class PageSizeRefusedError(APIRequestError):
    """A 400 about `page[size]`: the endpoint takes a smaller page, or none at all."""

    def __init__(self, message: str, largest_named: int | None) -> None:
        """The error `message`, and the largest page size it names, if any."""
        super().__init__(message)
        #: The largest page size the error names (e.g. "between 1 and 50"), if any.
        self.largest_named = largest_named


def refused_page_size(response: requests.Response) -> PageSizeRefusedError | None:
    """The refusal of `page[size]` in a 400 or 422 answer, if that is what it is.

    That is an `_errors` entry whose source parameter (or, failing that, text) names the page
    size, or a body in another shape whose text does (the docs do not settle the refusal's
    shape).
    """
    if response.status_code not in {HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY}:
        return None
    try:
        body = decode_json(response)
    except UnreadableBodyError:
        return None
    errors = body.get("_errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):  # another shape: its text is all there is to go by
        text = json.dumps(body)[:2000]
        return _refusal(response, text) if PAGE_SIZE_WORDS.search(text) else None
    for error in errors:
        if not isinstance(error, dict):
            continue
        source = error.get("source")
        parameter = source.get("parameter") if isinstance(source, dict) else None
        text = " ".join(str(error.get(k) or "") for k in ("title", "detail"))
        if parameter in PAGE_SIZE_PARAMETERS or (
            parameter is None and PAGE_SIZE_WORDS.search(text)
        ):
            return _refusal(response, text)
    return None


def _refusal(response: requests.Response, text: str) -> PageSizeRefusedError:
    numbers = [int(n) for n in re.findall(r"\d{1,9}", text) if int(n) > 0]
    return PageSizeRefusedError(describe_api_errors(response), max(numbers, default=None))


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


class PageSizing:
    """The page size one endpoint is asked for.

    The setting within the endpoint's maximum, until the endpoint refuses it; then the largest
    size the refusal names, else the documented default, else no `page[size]` at all. Threads
    reading windows share it.
    """

    def __init__(self, setting: int, maximum: int | None) -> None:
        """Start at the `setting` within `maximum` (None: not paged), nothing refused yet."""
        self.setting = setting
        self.maximum = maximum  # None: the endpoint is not paged
        #: The size the endpoint refused first (None: none so far).
        self.refused: int | None = None
        #: The largest size asked for since a refusal (None: no cap).
        self.cap: int | None = None
        #: Whether `page[size]` is sent at all.
        self.sends = True
        self._reported = False
        self._lock = threading.Lock()

    @property
    def size(self) -> int | None:
        """Records per page now; the API's default once it refuses `page[size]`."""
        if self.maximum is None:
            return None
        if not self.sends:
            return DOCUMENTED_DEFAULT_PAGE_SIZE
        size = min(self.setting, self.maximum)
        return size if self.cap is None else min(size, self.cap)

    @property
    def param(self) -> int | None:
        """The `page[size]` to send, if one is."""
        return self.size if self.sends else None

    def fitted(self, url: str) -> str | None:
        """`url` asking for no larger page than settled on; None if it already does.

        A next link, or a request prepared before the size settled, may carry the size refused.
        """
        sent = page_size_in(url)
        if sent is None or (self.sends and sent <= (self.size or sent)):
            return None
        return with_page_size(url, self.param)

    def smaller(self, url: str, refused: PageSizeRefusedError, where: str) -> None:
        """After the endpoint refused the page size of `url`: settle on a smaller one."""
        sent = page_size_in(url)
        with self._lock:
            if sent is None:  # refused without one: not a page size the tap can change
                msg = (
                    f"Amplemarket rejected {where} (400) even without page[size]: {refused}: "
                    "report it to Amplemarket"
                )
                raise APIRequestError(msg) from None
            if not self.sends or (self.size or sent) < sent:
                return  # another thread has settled on a smaller size already
            self.refused = self.refused or sent
            self._reported = False
            named = refused.largest_named
            if named is not None and named < sent:
                self.cap = named
            elif sent > DOCUMENTED_DEFAULT_PAGE_SIZE:
                self.cap = DOCUMENTED_DEFAULT_PAGE_SIZE
            else:
                self.sends = False

    def settled(self) -> str | None:
        """Once, after a page came with the size settled on since a refusal: what it is."""
        if self.refused is None or self._reported:
            return None
        with self._lock:
            if self._reported:
                return None
            self._reported = True
            return f"page[size]={self.size}" if self.sends else "no page[size] (the API's own page)"


def page_identity(url: str) -> tuple[str, str, Query]:
    """A URL as a page: host, path and query parameters in any order or encoding."""
    parts = urlsplit(url)
    return parts.netloc.lower(), parts.path, tuple(sorted(parse_qsl(parts.query)))


def filters_of(url: str) -> dict[str, str]:
    """The query filters of `url`: every parameter but the page's own (`page[...]`)."""
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    return {k: v for k, v in query if not k.startswith("page[")}


def with_filters(url: str, filters: dict[str, str]) -> tuple[str, list[str]]:
    """`url` with each of `filters` it lacks added back, and the names of those added."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    missing = [k for k in filters if k not in present]
    if not missing:
        return url, []
    query += [(k, filters[k]) for k in missing]
    return urlunsplit(parts._replace(query=urlencode(query, safe="[]:"))), missing


class NextLinkPaginator(BaseHATEOASPaginator):
    """Follows `_links.next.href`, which should carry every filter and the cursor.

    A filter of the listing's first request that a next link lacks (`user_id` on /tasks,
    the dates on /calls) is put back: followed as is, the link would list another set of
    records (on /calls, the whole history once per window).

    Every page it was given is remembered, so a link back to any of them (a cycle of any
    length, a page linking to itself) ends the pagination instead of looping; and so is
    every record key, so that more than MAX_PAGES_WITH_NOTHING_NEW pages in a row with no
    record not read before (empty, or the same records under new cursors) end it too. A
    page or two like that (a listing that shifted under its cursor) is paged past.
    """

    def __init__(
        self,
        *,
        stream: str,
        path: str,
        api_url: str,
        records_key: str,
        key_fields: tuple[str, ...],
        max_pages: int,
        logger: logging.Logger,
        noted: set[str],
    ) -> None:
        """Page one listing of `stream` (GET `path` on `api_url`).

        `noted`: what has been logged once for the stream, shared by its paginators.
        """
        super().__init__()
        self.stream = stream
        self.path = path
        self.api_url = api_url
        self.records_key = records_key
        self.key_fields = key_fields
        self.max_pages = max_pages
        self.logger = logger
        self.noted = noted
        self._first_filters: dict[str, str] | None = None
        self._pages_seen: set[tuple[str, str, Query]] = set()
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
        if self._first_filters is None:
            self._first_filters = filters_of(page_url)
        self._pages_seen.add(page_identity(page_url))
        body = json_body(response)
        href = next_href(body, page_url)
        if href is None:
            return None
        url, restored = with_filters(link_url(self.api_url, href, page_url), self._first_filters)
        if restored and "filters restored" not in self.noted:
            self.noted.add("filters restored")  # once per stream: the tap copes
            self.logger.info(
                "%s: GET %s's next links drop %s of the first request; the tap puts it back",
                self.stream,
                self.path,
                ", ".join(restored),
            )
        if page_identity(url) in self._pages_seen or self._going_nowhere(body):
            # Records after it may be unread: ending the listing there would lose them
            # silently (and, for calls, a checkpoint would move the bookmark past them).
            msg = (
                f"{self.stream}: Amplemarket's next link {redacted(href, 300)} leads back to a "
                f"page already read, or past {MAX_PAGES_WITH_NOTHING_NEW} pages in a row with "
                "nothing new: stopping, so that nothing is skipped; report it to Amplemarket"
            )
            raise APIRequestError(msg)
        if len(self._pages_seen) >= self.max_pages:
            msg = (
                f"{self.stream}: GET {self.path} still links on after {self.max_pages:,} pages "
                "of one listing (max_pages_per_partition): stopping; raise "
                "max_pages_per_partition if the account really holds that much"
            )
            raise APIRequestError(msg)
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
    shown = redacted(json.dumps(next_link, default=str), 200)
    msg = (
        f"Response from {where} has a next link the tap cannot read ({shown}; expected "
        '{"href": "..."}): stopping, so that the rest of the listing is not skipped; report '
        "it to Amplemarket"
    )
    raise APIRequestError(msg)
