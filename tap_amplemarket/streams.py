"""The Amplemarket streams; their JSON schemas live in `schemas/`."""

from __future__ import annotations

import typing as t

from typing_extensions import override

from tap_amplemarket.client import AmplemarketStream
from tap_amplemarket.windows import DateWindows

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class CallsStream(AmplemarketStream):
    """Calls, read in ascending date windows with a checkpoint after each (windows.py).

    /calls lists newest first (or in an order the docs do not state), which cannot be
    checkpointed mid-stream; date windows make each window's end a resume point, and the
    lookback picks up calls logged or updated after the fact.
    """

    name = "calls"
    path = "/calls"
    replication_key = "start_date"
    date_windows = DateWindows(
        from_param="start_date_from",
        to_param="start_date_to",
        first_window_days=7,
        lookback_days=3,
    )


class DispositionsStream(AmplemarketStream):
    """Call dispositions (`action`: complete | next_stage); a small, full-table list."""

    name = "dispositions"
    path = "/calls/dispositions"
    max_page_size = None


class UsersStream(AmplemarketStream):
    """Users of the Amplemarket account; parent of `tasks`."""

    name = "users"
    path = "/users"
    child_context_key = "user_id"


class TasksStream(AmplemarketStream):
    """Tasks, one partition per user: /tasks requires `user_id`."""

    name = "tasks"
    path = "/tasks"
    parent_stream_type = UsersStream
    state_partitioning_keys: t.ClassVar[list[str]] = []  # full table: no per-user state to keep


class SequencesStream(AmplemarketStream):
    """Sequences (ids are 40 hex characters, not uuids)."""

    name = "sequences"
    path = "/sequences"


class MailboxesStream(AmplemarketStream):
    """Mailboxes connected to the account; the endpoint pages at most 20 at a time."""

    name = "mailboxes"
    path = "/mailboxes"
    max_page_size = 20


class LeadListsStream(AmplemarketStream):
    """Lead lists; parent of `lead_list_entries`."""

    name = "lead_lists"
    path = "/lead-lists"
    ignored_fields = ("leads", "_links")  # leads: loaded into lead_list_entries
    child_context_key = "lead_list_id"


class LeadListEntriesStream(AmplemarketStream):
    """The leads of each lead list: GET /lead-lists/{id} pages its `leads` by entry id."""

    name = "lead_list_entries"
    path = "/lead-lists/{lead_list_id}"
    records_key = "leads"
    records_key_aliases = ("results",)  # the guide's step 4 says `response.results`
    primary_keys = ("lead_list_id", "id")
    parent_stream_type = LeadListsStream
    state_partitioning_keys: t.ClassVar[list[str]] = []

    @override
    def post_process(
        self, row: dict[str, t.Any], context: Context | None = None
    ) -> dict[str, t.Any] | None:
        # The entry does not name its list; the SDK adds context keys only to partitioned state.
        row["lead_list_id"] = (context or {}).get("lead_list_id")
        return super().post_process(row, context)


class ExcludedDomainsStream(AmplemarketStream):
    """Domains excluded from outreach."""

    name = "excluded_domains"
    path = "/excluded-domains"
    primary_keys = ("domain",)


class ExcludedEmailsStream(AmplemarketStream):
    """Email addresses excluded from outreach."""

    name = "excluded_emails"
    path = "/excluded-emails"
    primary_keys = ("email",)


class AccountsStream(AmplemarketStream):
    """Accounts (companies) known to Amplemarket."""

    name = "accounts"
    path = "/accounts"
