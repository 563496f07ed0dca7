"""The endpoints the fake API serves, written from the API's documentation
(../shared/amplemarket-docs/api-facts.md), not from the tap: one row per list endpoint.

Each row says what the docs say (or, where they say nothing, the plausible answer the fake
gives, marked UNKNOWN): the path, the key of the records in a response, the field the
`page[after]` cursor carries, the default and the largest page size, and the query filters
the endpoint requires. tests/test_contract.py checks the tap's streams against this table.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t
from urllib.parse import unquote

Record = dict[str, t.Any]

#: The self links of the examples show a default of 20 (users, tasks, sequences, mailboxes, calls).
DOCUMENTED_DEFAULT_PAGE_SIZE = 20
#: The largest page an endpoint without a documented maximum accepts here (UNKNOWN: tests
#: that care set their own through FakeAmplemarketAPI(max_page_sizes=...)).
UNDOCUMENTED_MAX_PAGE_SIZE = 100


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One documented list endpoint."""

    stream: str  # the table the records make (the tap's stream of that name)
    path: str  # placeholders in braces: `/lead-lists/{lead_list_id}`
    records_key: str
    primary_keys: tuple[str, ...]
    #: The field `page[after]` carries (the last record's); None: the endpoint is not paged.
    cursor: str | None = "id"
    default_page_size: int = DOCUMENTED_DEFAULT_PAGE_SIZE
    #: The documented largest `page[size]`; None: not documented.
    max_page_size: int | None = None
    #: The stream whose records this endpoint is read for, one request per parent record.
    parent: str | None = None
    #: The parent's id, in the path (a detail endpoint) or as a required query filter.
    parent_key: str | None = None
    #: One record as the docs' example shows it: what the fake serves for a stream that its
    #: dataset has no records for (copies with fresh keys).
    example: Record = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def detail(self) -> bool:
        """Whether the parent's id is in the path: the records live in their parent record."""
        return self.parent_key is not None and f"{{{self.parent_key}}}" in self.path

    @property
    def required_filters(self) -> tuple[str, ...]:
        return (self.parent_key,) if self.parent_key and not self.detail else ()

    @property
    def paged(self) -> bool:
        return self.cursor is not None

    def match(self, path: str) -> dict[str, str] | None:
        """The path's placeholder values if `path` is this endpoint's, else None."""
        found = _path_pattern(self.path).fullmatch(path)
        return {k: unquote(v) for k, v in found.groupdict().items()} if found else None


def _path_pattern(path: str) -> re.Pattern[str]:
    literal, *rest = re.split(r"\{(\w+)\}", path)
    pattern = re.escape(literal)
    for name, text in zip(rest[::2], rest[1::2], strict=True):
        pattern += f"(?P<{name}>[^/]+){re.escape(text)}"
    return re.compile(pattern)


#: A call as the /calls OpenAPI example shows one (its ids replaced by the copies').
CALL_EXAMPLE: Record = {
    "from": "+351 912 345 678",
    "to": "+1 555 0100",
    "duration": 42,
    "answered": True,
    "human": True,
    "transcription": None,
    "notes": None,
    "disposition_id": None,
    "task_id": None,
    "user_id": "0190f1a4-6d1e-7c3b-9a8e-3f2b1c0d4e5f",
    "external": False,
    "start_date": "2026-05-03T17:44:17Z",
    "contact": None,
}

ENDPOINTS: tuple[Endpoint, ...] = (
    # §1: records key `calls`; default 20 [ex]; maximum UNKNOWN; newest first [ex/PostHog].
    Endpoint("calls", "/calls", "calls", ("id",), example=CALL_EXAMPLE),
    # §2: records key UNKNOWN (PostHog: `dispositions`); paging UNKNOWN: served in one page.
    Endpoint("dispositions", "/calls/dispositions", "dispositions", ("id",), cursor=None),
    # §3: records key `users`; default 20 [ex].
    Endpoint("users", "/users", "users", ("id",)),
    # §4: `user_id` is required [doc]; default 20 [ex].
    Endpoint("tasks", "/tasks", "tasks", ("id",), parent="users", parent_key="user_id"),
    # §5: 40-hex ids [ex].
    Endpoint("sequences", "/sequences", "sequences", ("id",)),
    # §6: "Page size (max 20)" [doc].
    Endpoint("mailboxes", "/mailboxes", "mailboxes", ("id",), max_page_size=20),
    # §7: records key `lead_lists` [PostHog]; page size UNKNOWN.
    Endpoint("lead_lists", "/lead-lists", "lead_lists", ("id",)),
    # §8: the list with its entries under `leads`, paged by entry id; "up to 100" by default.
    Endpoint(
        "lead_list_entries",
        "/lead-lists/{lead_list_id}",
        "leads",
        ("lead_list_id", "id"),
        default_page_size=100,
        parent="lead_lists",
        parent_key="lead_list_id",
    ),
    # §9: keyed by the domain / email; page size UNKNOWN (the example pages `size=2000`).
    Endpoint("excluded_domains", "/excluded-domains", "excluded_domains", ("domain",), "domain"),
    Endpoint("excluded_emails", "/excluded-emails", "excluded_emails", ("email",), "email"),
    # §14: not in the docs index; PostHog syncs it with records key `accounts`, key `id`.
    Endpoint("accounts", "/accounts", "accounts", ("id",)),
)


def endpoint_for(stream: str, endpoints: t.Iterable[Endpoint] = ENDPOINTS) -> Endpoint:
    return next(endpoint for endpoint in endpoints if endpoint.stream == stream)
