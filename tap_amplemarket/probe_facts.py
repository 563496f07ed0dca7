"""The facts the probe settles: one function each, reading a `Prober`, giving a `Finding`.

Each names what it saw by type, format, field name or enum value, never a record's value.
"""

from __future__ import annotations

import datetime
import typing as t

from tap_amplemarket.probe_session import (
    CONFIRMED,
    DIFFERS,
    NO_DATA,
    Finding,
    Prober,
)
from tap_amplemarket.timefmt import normalize_datetime

if t.TYPE_CHECKING:
    from collections.abc import Callable


#: Per stream: the status an unfiltered list may leave out, and the statuses that show it
#: was listed (finished tasks, inactive users, archived sequences).
HIDDEN_STATUSES = {
    "users": ("inactive", {"inactive"}),
    "tasks": ("completed", {"completed", "skipped"}),
    "sequences": ("archived", {"archived", "archiving"}),
}
MEDIA_TYPE = "application/vnd.amp+json"


def media_type(probe: Prober) -> Finding:
    """The media type the API answers with, from the first pages read."""
    seen = sorted({a.media_type for a in probe.first.values() if a.ok})
    if not seen:
        return Finding("media_type", NO_DATA, "no endpoint answered 200")
    if seen == [MEDIA_TYPE]:
        return Finding("media_type", CONFIRMED, MEDIA_TYPE)
    return Finding("media_type", DIFFERS, ", ".join(seen), "the tap reads application/json as well")


def records_keys(probe: Prober) -> Finding:
    """Whether each first page lists its records under the key its stream reads."""
    unread = [
        probe.streams[n].path for n, a in probe.first.items() if a.status == 200 and a.failure
    ]
    read = [n for n, a in probe.first.items() if a.ok]
    if unread:
        return Finding(
            "records_keys",
            DIFFERS,
            f"no records list the tap reads at {', '.join(map(str, unread))}",
            "those streams stop the run: report it (issue tracker), deselect them meanwhile",
            matters=True,
        )
    if not read:
        return Finding("records_keys", NO_DATA, "no endpoint answered 200")
    return Finding("records_keys", CONFIRMED, f"{len(read)} endpoints list under their key")


def plan_gated(probe: Prober) -> Finding:
    """Which endpoints the plan gates, and with 403 or 404, from the first pages read."""
    gated = {n: a.status for n, a in probe.first.items() if a.status in {403, 404}}
    if not gated:
        return Finding("plan_gated", NO_DATA, "every endpoint answered: none is plan-gated")
    shown = ", ".join(f"{probe.streams[n].path} {s}" for n, s in sorted(gated.items()))
    if 403 in gated.values():
        return Finding(
            "plan_gated", DIFFERS, shown, "403, not 404: the tap skips those streams, warning once"
        )
    return Finding("plan_gated", CONFIRMED, f"{shown}: the tap skips those streams")


def page_size(probe: Prober) -> Finding:
    """Whether endpoints take and serve the `page[size]` asked for, from the first pages read."""
    refused, capped = [], []
    for name, answer in probe.first.items():
        stream = probe.streams[name]
        sizing = stream.page_sizing
        asked = sizing.param
        if answer.failure == "APIRequestError" and asked is not None:
            return Finding(
                "page_size",
                DIFFERS,
                f"GET {stream.path} refused page[size]={asked} in a shape the tap cannot read",
                "set page_size to 20 (the documented default)",
                matters=True,
            )
        if sizing.refused is not None:
            refused.append(f"{stream.path} refused {sizing.refused}, took {sizing.param}")
        elif asked and answer.ok and answer.next_query() is not None:
            served = len(answer.records(stream.records_key or name))
            if served < asked:
                capped.append(f"{stream.path} served {served} of {asked}")
    if refused or capped:
        return Finding(
            "page_size",
            DIFFERS,
            "; ".join(refused + [f"{c}, silently" for c in capped]),
            "the tap falls back to a size taken, and follows next links (copes)",
        )
    return Finding("page_size", CONFIRMED, "every endpoint served the page size asked")


def entries_key(probe: Prober) -> Finding:
    """The key a lead list's entries come under, from a GET of the first lead list's entries."""
    lead_lists = probe.records("lead_lists")
    if not lead_lists:
        return Finding("lead_list_entries_key", NO_DATA, "no lead list")
    answer = probe.get("lead_list_entries", context={"lead_list_id": lead_lists[0].get("id")})
    if answer.status in {403, 404}:
        return Finding("lead_list_entries_key", NO_DATA, f"GET /lead-lists/{{id}} {answer.status}")
    if not answer.ok:
        return Finding(
            "lead_list_entries_key",
            DIFFERS,
            f"GET /lead-lists/{{id}} answered {answer.status} {answer.failure}".strip(),
            "lead_list_entries stops the run: report it, deselect it meanwhile",
            matters=True,
        )
    if (
        isinstance(answer.body.get("leads"), list)
        and probe.streams["lead_list_entries"].records_key_alias is None
    ):
        return Finding("lead_list_entries_key", CONFIRMED, "entries under `leads`")
    return Finding(
        "lead_list_entries_key", DIFFERS, "entries under `results`", "the tap reads them there"
    )


def exclusions_page_param(probe: Prober) -> Finding:
    """Which page size parameter /excluded-domains takes, from GETs asking for one per page."""
    fact = "exclusions_page_param"
    records = probe.records("excluded_domains")
    if len(records) < 2 and probe.first["excluded_domains"].next_query() is None:
        return Finding(fact, NO_DATA, "fewer than 2 excluded domains")
    if len(probe.get("excluded_domains", {"page[size]": 1}).records("excluded_domains")) <= 1:
        return Finding(fact, CONFIRMED, "/excluded-domains takes page[size]")
    by_size = probe.get("excluded_domains", {"page[size]": None, "size": 1})
    seen = "takes `size`" if len(by_size.records("excluded_domains")) <= 1 else "takes neither"
    return Finding(
        fact,
        DIFFERS,
        f"/excluded-domains ignores page[size], {seen}",
        "the tap reads the API's own pages through next links (copes)",
    )


def next_links_keep_filters(probe: Prober) -> Finding:
    """Whether next links keep a listing's filters, from filtered GETs of tasks and calls."""
    fact = "next_links_keep_filters"
    checks: list[tuple[str, dict[str, t.Any]]] = []
    users = probe.records("users")
    if users:
        checks.append(("tasks", {"user_id": users[0].get("id"), "page[size]": 1}))
    checks.append(("calls", {**calls_window(None, None), "page[size]": 1}))
    dropped, seen = [], 0
    for name, params in checks:
        answer = probe.get(name, params)
        query = answer.next_query()
        if query is None:
            continue
        seen += 1
        dropped += [f"{name}: {k}" for k in params if not k.startswith("page[") and k not in query]
    if not seen:
        return Finding(fact, NO_DATA, "no listing had a second page")
    if dropped:
        return Finding(fact, DIFFERS, f"dropped {', '.join(dropped)}", "the tap puts them back")
    return Finding(fact, CONFIRMED, f"{seen} listings' next links keep their filters")


def calls_window(
    since: datetime.datetime | None, until: datetime.datetime | None
) -> dict[str, str]:
    """The calls' date filter from `since` to `until`: from 2000 and to now when not given."""
    since = since or datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    until = until or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return {"start_date_from": iso(since), "start_date_to": iso(until)}


def iso(when: datetime.datetime) -> str:
    """`when` in UTC, to the second, with a `Z`: the form the probe sends dates in."""
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def call_start(call: dict[str, t.Any]) -> datetime.datetime | None:
    """A call's start_date as a datetime; None if it has none the tap can read."""
    value = call.get("start_date")
    normal = normalize_datetime(value) if isinstance(value, str) else None
    return datetime.datetime.fromisoformat(normal.replace("Z", "+00:00")) if normal else None


def calls_date_filter(probe: Prober) -> Finding:
    """Whether and how calls' date filter applies, from GETs of windows around a listed call."""
    fact = "calls_date_filter"
    dated = [(c, when) for c in probe.records("calls") if (when := call_start(c)) is not None]
    if not dated:
        return Finding(fact, NO_DATA, "no call with a start_date")
    call, when = dated[len(dated) // 2]
    second = datetime.timedelta(seconds=1)
    before = when - datetime.timedelta(days=3650)
    far = (before - datetime.timedelta(days=1), before)
    listed = [call_start(c) for c in probe.get("calls", calls_window(*far)).records("calls")]
    if any(w is None or not far[0] <= w <= far[1] for w in listed):
        # A window ten years before the call lists calls outside it: the filter is ignored.
        return Finding(
            fact,
            DIFFERS,
            "start_date_from/start_date_to are ignored",
            "each date window of calls reads the whole history: deselect calls (or run it "
            "rarely) and report it",
            matters=True,
        )

    def holds(since: datetime.datetime, until: datetime.datetime) -> bool:
        found = probe.get("calls", calls_window(since, until)).records("calls")
        return any(c.get("id") == call.get("id") for c in found)

    since_inclusive = holds(when, when + second)
    until_inclusive = holds(when - second, when)
    if since_inclusive and not until_inclusive:
        return Finding(fact, CONFIRMED, "applied; from <= start_date < to, to the second")
    if since_inclusive or until_inclusive or not holds(when - second, when + second):
        reading = (
            f"applied; start_date_from {'inclusive' if since_inclusive else 'exclusive'}, "
            f"start_date_to {'inclusive' if until_inclusive else 'exclusive'}"
        )
    else:  # in a two-second query, in neither one-second half: not read to the second
        reading = "applied, but not to the second (whole days, or another time zone)"
    copes = "the tap copes while lookback_window_days is at least 1 (docs/windows.md)"
    return Finding(fact, DIFFERS, reading, copes, matters=False)


def calls_order(probe: Prober) -> Finding:
    """The order calls are listed in, from their first page."""
    dates = [when for c in probe.records("calls") if (when := call_start(c)) is not None]
    if len(set(dates)) < 2:
        return Finding("calls_order", NO_DATA, "fewer than 2 calls")
    if dates == sorted(dates, reverse=True):
        return Finding("calls_order", CONFIRMED, "newest first")
    order = "oldest first" if dates == sorted(dates) else "in no start_date order"
    return Finding("calls_order", DIFFERS, order, "the tap does not rely on the order (copes)")


def unfiltered_lists(probe: Prober, name: str) -> Finding:
    """Whether stream `name` lists its hidden status unfiltered, from GETs with and without it.

    A finished status seen unfiltered settles it; else a GET filtered by the hidden status
    finds whether there are any to miss.
    """
    fact = f"unfiltered_{name}"
    hidden, finished = HIDDEN_STATUSES[name]
    context: dict[str, t.Any] = {}
    if name == "tasks":
        users = probe.records("users")
        if not users:
            return Finding(fact, NO_DATA, "no user")
        context = {"user_id": users[0].get("id")}
        unfiltered = probe.get(name, dict(context))
    else:
        unfiltered = probe.first[name]
    if not unfiltered.ok:
        return Finding(fact, NO_DATA, f"the unfiltered list answered {unfiltered.status}")
    statuses = {str(r.get("status")) for r in unfiltered.records(name)}
    if statuses & finished:
        return Finding(fact, CONFIRMED, f"lists {', '.join(sorted(statuses & finished))} ones")
    filtered = probe.get(name, {**context, "status": hidden, "page[size]": 1}).records(name)
    if not filtered:
        return Finding(fact, NO_DATA, f"no {hidden} {name}")
    if unfiltered.next_query() is not None:
        return Finding(fact, NO_DATA, f"{hidden} {name} exist, beyond the first page: unsettled")
    return Finding(
        fact,
        DIFFERS,
        f"{hidden} {name} are listed only with status={hidden}",
        "each full sync marks them deleted in the target: set emit_activate_version_messages "
        "false (see docs/deletions.md) and report it",
        matters=True,
    )


def unfiltered_users(probe: Prober) -> Finding:
    """Whether unfiltered users include inactive ones (see `unfiltered_lists`)."""
    return unfiltered_lists(probe, "users")


def unfiltered_tasks(probe: Prober) -> Finding:
    """Whether unfiltered tasks include finished ones (see `unfiltered_lists`)."""
    return unfiltered_lists(probe, "tasks")


def unfiltered_sequences(probe: Prober) -> Finding:
    """Whether unfiltered sequences include archived ones (see `unfiltered_lists`)."""
    return unfiltered_lists(probe, "sequences")


def transcript_entries(probe: Prober) -> Finding:
    """The shape of calls' transcripts, from the first page of calls."""
    values = [c["transcript"] for c in probe.records("calls") if c.get("transcript")]
    if not values:
        return Finding("transcript_entries", NO_DATA, "no call with a transcript")
    if any(not isinstance(v, list) for v in values):
        return Finding(
            "transcript_entries",
            DIFFERS,
            f"transcript is {type_name(next(v for v in values if not isinstance(v, list)))}",
            "the tap keeps it in _extra, warning each run: report it",
            matters=True,
        )
    fields: dict[str, set[str]] = {}
    for entry in (e for v in values for e in v):
        for key, value in entry.items() if isinstance(entry, dict) else [("(entry)", entry)]:
            fields.setdefault(str(key), set()).add(type_name(value))
    shown = ", ".join(f"{k}: {'|'.join(sorted(v))}" for k, v in sorted(fields.items()))
    return Finding("transcript_entries", CONFIRMED, f"a list of entries ({shown})")


def type_name(value: t.Any) -> str:
    """The JSON Schema type name of a decoded JSON value."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer"}
    return "null" if value is None else names.get(type(value), "number")


def date_formats(probe: Prober) -> Finding:
    """Whether the date-time fields read as ISO 8601, and in which forms, from the first pages."""
    forms: set[str] = set()
    unreadable: set[str] = set()
    for name in probe.first:
        properties = probe.streams[name].schema["properties"]
        dated = [k for k, p in properties.items() if p.get("format") == "date-time"]
        for record in probe.records(name):
            for key in dated:
                value = record.get(key)
                if isinstance(value, str):
                    forms.add(date_form(value))
                    if normalize_datetime(value) is None:
                        unreadable.add(f"{name}.{key}")
    if not forms:
        return Finding("date_formats", NO_DATA, "no date-time value")
    if unreadable:
        return Finding(
            "date_formats",
            DIFFERS,
            f"unreadable in {', '.join(sorted(unreadable))}",
            "the tap keeps them in _extra, warning each run: report it",
            matters=True,
        )
    return Finding("date_formats", CONFIRMED, f"ISO 8601 ({', '.join(sorted(forms))})")


def date_form(value: str) -> str:
    """A date-time's form, not its value: `Z`, `+HH:MM`, with fractions, naive."""
    zone = "Z" if value.endswith(("Z", "z")) else "+HH:MM" if value[-6:-5] in "+-" else "naive"
    return f"{zone}{', fractions' if '.' in value else ''}"


def undeclared_fields(probe: Prober) -> Finding:
    """Which fields records have that their stream's schema does not declare, from first pages."""
    extra = sorted(
        f"{name}.{key}"
        for name in probe.first
        for record in probe.records(name)
        for key in record
        if key not in probe.streams[name].schema["properties"]
        and key not in probe.streams[name].ignored_fields
    )
    if not any(probe.records(name) for name in probe.first):
        return Finding("undeclared_fields", NO_DATA, "no record")
    if extra:
        return Finding(
            "undeclared_fields",
            DIFFERS,
            ", ".join(sorted(set(extra))),
            "kept in _extra with a warning each run: report them so the schemas gain them",
        )
    return Finding("undeclared_fields", CONFIRMED, "every field is declared")


FACTS: tuple[Callable[[Prober], Finding], ...] = (
    media_type,
    records_keys,
    plan_gated,
    page_size,
    entries_key,
    exclusions_page_param,
    next_links_keep_filters,
    calls_date_filter,
    calls_order,
    unfiltered_users,
    unfiltered_tasks,
    unfiltered_sequences,
    transcript_entries,
    date_formats,
    undeclared_fields,
)
