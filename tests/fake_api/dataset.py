"""Deterministic sample data in the shapes the Amplemarket API's docs give (api-facts.md).

Standard library only, and nothing from the tap: PyAirbyte's test virtualenv reads it.
"""

from __future__ import annotations

import datetime
import random
import typing as t
import uuid

Record = dict[str, t.Any]


def isoformat_z(when: datetime.datetime) -> str:
    """The docs' date-time form: UTC, to the second, with a Z (`2026-06-03T17:44:17Z`)."""
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


#: A disposition's `action` is documented (complete | next_stage); `name` and `slug` are
#: PostHog's columns (S4).
DISPOSITIONS = [
    ("Meeting booked", "meeting_booked", "complete"),
    ("Not interested", "not_interested", "complete"),
    ("No answer", "no_answer", "next_stage"),
    ("Left voicemail", "left_voicemail", "next_stage"),
]
#: Task statuses the tasks guide names (S9: finished and skipped tasks are listed too).
TASK_STATUSES = ("scheduled", "completed", "skipped")


def with_offset(when: datetime.datetime, offset: str = "+05:30") -> str:
    """A date-time written at another offset (`2026-06-03T23:14:17+05:30`): ISO 8601 allows
    it and nothing in the docs rules it out."""
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = offset[1:].split(":")
    zone = datetime.timezone(sign * datetime.timedelta(hours=int(hours), minutes=int(minutes)))
    return when.astimezone(zone).isoformat(timespec="seconds")


def self_link(path: str, key: str) -> Record:
    """A record's own `_links` (S7: documented on sequences, lead lists and exclusions)."""
    return {"self": {"href": f"{path}/{key}"}}


class Dataset(dict[str, list[Record]]):
    """The records of each stream the fake API serves, by stream name (`data.calls` reads
    `data["calls"]`).

    A detail endpoint's records (`lead_list_entries`, from `GET /lead-lists/{id}`) live in
    their parent records, under the records key (`leads`). The fake reads these lists on
    every request: a record removed from them is no longer served. A stream with no records
    here is served copies of its endpoint's example (see generate.py).
    """

    def __getattr__(self, name: str) -> list[Record]:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class SampleFactory:
    """Makes records from one seeded random source, so every run sees the same data."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hex40(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def call(
        self,
        start_date: datetime.datetime,
        users: list[Record],
        dispositions: list[Record],
    ) -> Record:
        rng = self.rng
        user = rng.choice(users) if users else {"id": self.uuid()}
        answered = rng.random() < 0.6
        disposition = rng.choice(dispositions) if dispositions and answered else None
        transcript = (
            [  # S2: a chronological list of entries, whose fields are UNKNOWN
                {"speaker": "user", "text": "Hello, this is a call.", "start": 0.0},
                {"speaker": "contact", "text": "Hi.", "start": 2.5},
            ]
            if answered and rng.random() < 0.3
            else []
        )
        call: Record = {
            "id": self.uuid(),
            "disposition_id": disposition["id"] if disposition else None,
            "disposition_name": disposition["name"] if disposition else None,
            "direction": "outgoing" if rng.random() < 0.8 else "incoming",
            "duration": rng.randint(5, 900) if answered else None,
            "external": rng.random() < 0.2,
            "start_date": isoformat_z(start_date),
            "from": f"+1 555{rng.randint(1000000, 9999999)}",
            "to": f"+1 555{rng.randint(1000000, 9999999)}",
            "notes": rng.choice([None, "Follow up next week", "Asked for pricing"]),
            "transcript": transcript,
            "transcription": " ".join(e["text"] for e in transcript) or None,  # deprecated
            "task_id": self.uuid() if rng.random() < 0.8 else None,
            "user_id": user["id"],
            "user_email": user.get("email"),
            "human": answered and rng.random() < 0.8,
            "answered": answered if rng.random() < 0.9 else None,
            "contact": (
                {"id": self.uuid(), "name": "Jane Roe", "email": "jane.roe@example.com"}
                if rng.random() < 0.7
                else None
            ),
        }
        if rng.random() < 0.5:  # "(if available)"
            call["recording_url"] = "https://recordings.example.com/r.mp3"
        return call


def exclusion(key: str, value: str, source: str, reason: str, index: int) -> Record:
    added = f"2024-08-28T22:{index // 60 % 60:02}:{index % 60:02}.145Z"
    path = "/excluded-domains" if key == "domain" else "/excluded-emails"
    return {
        key: value,
        "source": source,
        "date_added": added,
        "excluded_reason": reason,
        "excluded_reasons": [reason],  # S5: plural, probably a list [inf]
        "_links": self_link(path, value),
    }


def sample_dataset(
    calls: int = 250,
    *,
    users: int = 3,
    days: float = 60,
    end: datetime.datetime | None = None,
    seed: int = 7,
    workdays: bool = False,
    burst: int = 0,
    burst_seconds: int = 9 * 3600,
) -> Dataset:
    """A dataset with `calls` calls over the `days` before `end`: evenly spread, or at random
    times of working hours (Monday to Friday, 09:00-18:00 UTC) if `workdays`; and a `burst`
    of calls more in the working hours of the day halfway through (a busy day in a quiet
    history: a window sized from the history around it holds them all), spread over its
    first `burst_seconds` (1: a bulk import stamped with one start_date)."""
    factory = SampleFactory(seed)
    end = end or datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)
    data = Dataset(users=[], mailboxes=[], tasks=[])
    data["dispositions"] = [
        {"id": factory.uuid(), "name": name, "slug": slug, "action": action}
        for name, slug, action in DISPOSITIONS
    ]
    for index in range(users):
        user_id = factory.uuid()
        email = f"rep{index}@acme.example"
        data.users.append(
            {
                "id": user_id,
                "name": f"Rep {index}",
                "email": email,
                "status": "active" if index % 3 else "inactive",
                "role": "admin" if index == 0 else "sales_rep",
                "mailboxes": [{"id": factory.uuid(), "email": email}],
            }
        )
        data.mailboxes.append(
            {
                "id": factory.uuid(),
                "email": email,
                "email_provider": "google",
                "daily_email_limit": 200,
                "status": "active",
                "user": {"id": user_id, "name": f"Rep {index}", "email": email},
                "created_at": "2025-01-02T10:00:00Z",
                "updated_at": with_offset(datetime.datetime(2025, 6, 2, 10, tzinfo=datetime.UTC)),
            }
        )
        for task_index in range(7):
            due = datetime.datetime(2026, 5, 20, 8, 58, 58, tzinfo=datetime.timezone.utc)
            due += datetime.timedelta(days=task_index, hours=index)
            data.tasks.append(
                {
                    "id": factory.uuid(),
                    "automatic": task_index % 2 == 0,
                    "type": "phone_call",
                    "status": TASK_STATUSES[task_index % 3],
                    "due_on": isoformat_z(due) if task_index % 2 else with_offset(due),
                    "finished_on": (
                        None
                        if TASK_STATUSES[task_index % 3] == "scheduled"
                        else isoformat_z(due + datetime.timedelta(hours=2))
                    ),
                    "notes": [None, "", "Call after lunch"][task_index % 3],
                    "sequence_key": factory.hex40(),
                    "sequence_name": "Outbound Q2",
                    "user_id": user_id,
                    "user_email": email,
                    "contact": {
                        "id": factory.uuid(),
                        "name": "Jane Roe",
                        "email": "jane@x.example",
                    },
                }
            )
    first = end - datetime.timedelta(days=days)
    if workdays:
        hours = [
            first.replace(minute=0, second=0, microsecond=0) + datetime.timedelta(hours=h)
            for h in range(int(days * 24))
        ]
        hours = [h for h in hours if h.weekday() < 5 and 9 <= h.hour < 18] or [first]
        times = sorted(
            factory.rng.choice(hours) + datetime.timedelta(seconds=factory.rng.randrange(3600))
            for _ in range(calls)
        )
    else:
        step = datetime.timedelta(days=days) / max(calls, 1)
        times = [first + step * index for index in range(calls)]
    burst_day = (first + datetime.timedelta(days=days) / 2).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    times += [
        burst_day + datetime.timedelta(seconds=factory.rng.randrange(burst_seconds))
        for _ in range(burst)
    ]
    data["calls"] = [factory.call(when, data.users, data.dispositions) for when in sorted(times)]
    data["sequences"] = [
        {
            "id": (sequence_id := factory.hex40()),
            "name": f"Sequence {index}",
            "status": "archived" if index % 9 == 4 else "active",
            "created_at": "2025-03-01T09:00:00Z",
            "updated_at": "2025-04-01T09:00:00Z",
            # 40 hex in the docs' example, while /users ids are uuids [ex]
            "created_by_user_id": factory.hex40(),
            "created_by_user_email": data.users[0]["email"] if data.users else None,
            "dynamic_fields_used": ["first_name", "company_name"] if index % 2 else [],
            "_links": self_link("/sequences", sequence_id),
        }
        for index in range(45)
    ]
    data["lead_lists"] = [
        {
            "id": (lead_list_id := factory.uuid()),
            "name": f"Leads {index}",
            "status": "completed",
            "shared": index % 2 == 0,
            "visible": True,
            "owner": data.users[0]["email"] if data.users else None,
            "type": "linkedin",
            "options": {
                "reveal_phone_numbers": index % 2 == 1,
                "validate_email": True,
                "enrich": index % 3 == 0,
            },
            "leads": [  # the documented fields only: the rest of the table is UNKNOWN
                {
                    "id": factory.uuid(),
                    "email": f"lead{index}-{lead}@prospect.example",
                    "person_id": factory.uuid() if lead % 5 else None,
                    "linkedin_url": f"https://www.linkedin.com/in/lead{index}-{lead}",
                }
                for lead in range(12)
            ],
            "_links": self_link("/lead-lists", lead_list_id),
        }
        for index in range(7)
    ]
    # Exclusion records: dates with milliseconds, as the docs' example has them.
    data["excluded_domains"] = [
        exclusion("domain", f"blocked{index}.example", "amplemarket", "manual", index)
        for index in range(33)
    ]
    data["excluded_emails"] = [
        exclusion("email", f"nobody{index}@blocked.example", "salesforce", "api", index)
        for index in range(27)
    ]
    data["accounts"] = [
        {
            "id": factory.uuid(),
            "name": f"Account {index}",  # S1: PostHog's columns
            "website": f"https://acct{index}.example",
            "linkedin_url": f"https://www.linkedin.com/company/acct{index}",
            "owner_email": data.users[0]["email"] if data.users else None,
            "last_contacted_at": with_offset(
                datetime.datetime(2026, 5, 5, 8, tzinfo=datetime.UTC)
                - datetime.timedelta(days=index)
            ),
            "last_engaged_at": None if index % 3 else "2026-04-05T08:00:00Z",
        }
        for index in range(31)
    ]
    return data


def add_surprises(data: Dataset, when: datetime.datetime, seed: int = 11) -> dict[str, Record]:
    """Add to `data` records the API's docs do not promise: wrong types, unknown fields, bad
    dates, missing ids. Returns the surprising calls by name.

    The calls start at `when`, an hour apart. `when` must be earlier than every call in
    `data`: the call without an id is then the oldest, so it never ends a page that has a
    next link (the fake's cursor is the last call's id).
    """
    factory = SampleFactory(seed)

    def call(hours: int, **fields: t.Any) -> Record:
        record = factory.call(when + datetime.timedelta(hours=hours), data.users, [])
        record.update(fields)
        return record

    calls = {
        "no_id": call(0, id=None),
        "transcript_string": call(1, transcript="Hello"),  # the older string form
        "duration_string": call(2, duration="12"),
        "contact_string": call(3, contact="Jane Roe <jane@x.example>"),
        "contact_unknown_field": call(
            4, contact={"id": factory.uuid(), "name": "Jane", "phone": "+1 555 0100"}
        ),
        "bad_date": call(5, start_date="2025-13-45"),
        "offset_date": call(6),
        "naive_date": call(7),
        "numeric_phone": call(8, **{"from": 15551234567}),
        "integer_id": call(9, id=424242),
        "unknown_field": call(10, sentiment="positive"),
        "boolean_string": call(11, answered="true"),
        "own_extra": call(12, _extra={"sent": "by the API"}),
    }
    # Date-times written other ways: an offset (the instant is `at`), and naive (UTC).
    at = when + datetime.timedelta(hours=6)
    calls["offset_date"]["start_date"] = (at + datetime.timedelta(hours=2)).strftime(
        "%Y-%m-%dT%H:%M:%S+02:00"
    )
    calls["naive_date"]["start_date"] = (at + datetime.timedelta(hours=1)).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    data.calls.extend(calls.values())

    user = data.users[0]
    data.users.append(
        {
            **user,
            "id": factory.uuid(),
            "mailboxes": [
                {"id": factory.uuid(), "email": user["email"]},
                "not a mailbox",
                {"id": 5, "email": user["email"], "provider": "google"},
            ],
        }
    )
    data.mailboxes.append(
        {
            **data.mailboxes[0],
            "id": factory.uuid(),
            "daily_email_limit": "200",
            "created_at": "2025-01-02T10:00:00.123+01:00",
        }
    )
    data.tasks.append({**data.tasks[0], "id": factory.uuid(), "due_on": "2026-05-20"})
    data.dispositions.append({"name": "No id", "action": "complete"})
    data.dispositions.append("not a disposition")  # type: ignore[arg-type]
    data.lead_lists[0]["leads"].append({"email": "no-id@prospect.example", "person_id": None})
    return calls
