"""Random histories of calls, synced from the fake API under every reading of its date filter,
killed at a random STATE and resumed: nothing is lost.

The tap runs in this process with its real request, retry and paging code against the fake
API on 127.0.0.1. Each history draws bursts, same-second clusters, the date forms the tap reads,
dates it cannot read, an order (by date or by id), a reading of start_date_from/start_date_to
(`calls_date_filter`: exact bounds inclusive or not, whole days, account-local time at any
offset, text order on dates stored with offsets), a page size, workers, a lookback, a kill at
a random STATE and calls logged late before the resume. Checked: every call dated in
[start, end - skew) is written, where skew is how far the filter's reading can place a call
from its instant (none for exact bounds, under a day for the others, which the lookback
covers); no STATE passes a call not yet written by more than that skew; the bookmark never
moves back.

TAP_AMPLEMARKET_PROPERTY_EXAMPLES=500 runs more histories than CI's few dozen.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import os
import typing as t
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_amplemarket.client import AmplemarketStream
from tap_amplemarket.tap import TapAmplemarket
from tap_amplemarket.timefmt import parse_timestamp, read_instant
from tap_amplemarket.windows import DateWindows
from tap_amplemarket.writer import CheckpointFlushingWriter
from tests.conftest import parse_messages
from tests.fake_api import FakeAmplemarketAPI
from tests.fake_api.dataset import Dataset

EXAMPLES = int(os.environ.get("TAP_AMPLEMARKET_PROPERTY_EXAMPLES", "30"))
UTC = datetime.timezone.utc
START = datetime.datetime(2026, 1, 1, tzinfo=UTC)
END = START + datetime.timedelta(days=40)
SPAN_SECONDS = int((END - START).total_seconds())
DAY = datetime.timedelta(days=1)
EXACT = ("exact", "inclusive", "exclusive", "mixed")


def render(when: datetime.datetime, form: str) -> str:
    """`when` written in one of the forms the tap reads."""
    if form == "leap":  # the last instant of a second, written as second 60 of the minute
        return when.strftime("%Y-%m-%dT%H:%M:60Z")
    if form.startswith(("+", "-")):  # an offset, e.g. +05:30
        sign = -1 if form[0] == "-" else 1
        delta = datetime.timedelta(hours=int(form[1:3]), minutes=int(form[4:6]))
        return when.astimezone(datetime.timezone(sign * delta)).isoformat()
    if form == "offset-basic":
        zone = datetime.timezone(-datetime.timedelta(hours=4, minutes=30))
        return when.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S%z")
    text = when.replace(tzinfo=None).isoformat() + "Z"
    if form == "lower":
        return text.replace("T", "t").replace("Z", "z")
    if form == "space":
        return text.replace("T", " ")
    if form == "comma":
        return text.replace(".", ",")
    return text


#: Forms any reading copes with; text order also on these (a space or a `t` sorts a call a
#: whole day away as text, and is left to the other readings).
FORMS = ("z", "z", "z", "+05:30", "-14:00", "+14:00", "+02:00", "offset-basic", "comma", "leap")
ALL_FORMS = (*FORMS, "lower", "space")


@st.composite
def calls_of(draw: st.DrawFn, prefix: str, at_most: int, forms: tuple[str, ...]) -> list[dict]:
    """Groups of calls: one, a burst over minutes or hours, or a cluster in one second."""
    calls: list[dict[str, t.Any]] = []
    for _ in range(draw(st.integers(0, 6))):
        first = draw(st.integers(0, SPAN_SECONDS - 1))
        count = draw(st.sampled_from([1, 2, 5, 30, 80, 150]))
        spread = draw(st.sampled_from([0, 0, 1, 60, 3600, 86400]))
        fractions = draw(st.booleans())
        mixed = draw(st.booleans())
        for index in range(min(count, at_most - len(calls))):
            seconds = first + (index * spread // max(count, 1))
            when = START + datetime.timedelta(seconds=min(seconds, SPAN_SECONDS - 1))
            form = forms[(index + first) % len(forms)] if mixed else "z"
            micro = (index * 7919) % 1_000_000 if fractions else 0
            when = when.replace(microsecond=999_999 if form == "leap" else micro)
            calls.append({"id": f"{prefix}{len(calls):05d}", "start_date": render(when, form)})
    for index in range(draw(st.integers(0, 2))):  # dates neither the tap nor the fake reads
        calls.append({"id": f"{prefix}x{index}", "start_date": draw(st.sampled_from(["", "soon"]))})
    return calls


def instant(call: dict[str, t.Any]) -> datetime.datetime | None:
    read = read_instant(call["start_date"]) if isinstance(call["start_date"], str) else None
    return None if read is None else read[0]


@pytest.fixture(autouse=True)
def no_metrics() -> t.Iterator[None]:
    """The SDK's METRIC line per request: half the time of these runs, and read by none."""
    metrics = logging.getLogger("singer_sdk.metrics")
    metrics.disabled = True
    yield
    metrics.disabled = False


class Killed(BaseException):
    pass


def run_tap(
    config: dict[str, t.Any], state: dict | None, kill_at: int | None, stream: str = "calls"
) -> list[dict[str, t.Any]]:
    """One run of the tap (`stream` only), SIGKILLed in effect right after its `kill_at`th
    STATE; its messages."""

    class KillingWriter(CheckpointFlushingWriter):
        states = 0

        def write_message(self, message: t.Any) -> None:
            super().write_message(message)
            if getattr(message, "type", None) == "STATE":
                KillingWriter.states += 1
                if KillingWriter.states == kill_at:
                    self.flush()
                    raise Killed

    class Tap(TapAmplemarket):
        message_writer_class = KillingWriter

    buffer = io.BytesIO()
    wrapper = io.TextIOWrapper(buffer, encoding="utf-8")
    with contextlib.redirect_stdout(wrapper), contextlib.suppress(Killed):
        tap = Tap(config=config, state=state, validate_config=True)
        for name, each in tap.streams.items():
            each.selected = name == stream
        try:
            tap.sync_all()
        finally:
            tap.message_writer.flush()  # as at exit
    wrapper.flush()
    return parse_messages(buffer.getvalue().decode())


def bookmark_of(message: dict[str, t.Any], stream: str = "calls") -> datetime.datetime | None:
    value = message["value"]["bookmarks"].get(stream, {}).get("replication_key_value")
    return parse_timestamp(value) if value else None


def check_run(
    messages: list[dict[str, t.Any]],
    calls: list[dict[str, t.Any]],
    written_before: set[str],
    covered_from: datetime.datetime,
    skew: datetime.timedelta,
    resumed: datetime.datetime | None,
) -> set[str]:
    """No STATE passes a call (dated from `covered_from` on) not yet written by more than
    `skew`, nor moves back; returns the ids written."""
    written: set[str] = set()
    previous = resumed
    for message in messages:
        if message["type"] == "RECORD":
            written.add(message["record"]["id"])
        elif message["type"] == "STATE" and (bookmark := bookmark_of(message)) is not None:
            assert previous is None or bookmark >= previous, "the bookmark moved back"
            previous = bookmark
            behind = [
                call["id"]
                for call in calls
                if (when := instant(call)) is not None
                and covered_from <= when < bookmark - skew
                and call["id"] not in written_before | written
            ]
            assert behind == [], f"a STATE at {bookmark} passed calls not written: {behind[:5]}"
    return written


OFFSET_MINUTES = st.integers(-14 * 60, 14 * 60)
READINGS = st.one_of(
    st.sampled_from([*EXACT, "days", "text"]),
    OFFSET_MINUTES.map(
        lambda m: f"local:{'-' if m < 0 else '+'}{abs(m) // 60:02}:{abs(m) % 60:02}"
    ),
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES <= 100,  # CI: the same histories every run
)
@given(data=st.data(), reading=READINGS)
def test_random_histories_under_any_date_filter_killed_and_resumed_lose_nothing(data, reading):
    forms = FORMS if reading == "text" else ALL_FORMS
    history = data.draw(calls_of("a", 250, forms), "history")
    logged_late = data.draw(calls_of("b", 60, forms), "logged_late")
    page_size = data.draw(st.sampled_from([1, 2, 3, 5]), "page_size")
    workers = data.draw(st.integers(1, 4), "workers")
    exact = reading in EXACT
    lookback_days = data.draw(st.integers(0 if exact else 1, 3), "lookback_days")
    kill_at = data.draw(st.one_of(st.none(), st.integers(1, 12)), "kill_at")
    by_id = data.draw(st.booleans(), "by_id")
    skew = datetime.timedelta(0) if exact else DAY  # how far the reading places a call
    lookback = datetime.timedelta(days=lookback_days)

    with FakeAmplemarketAPI(
        Dataset(calls=list(history)), api_key="k", calls_by_id=by_id, calls_date_filter=reading
    ) as api:
        config = {
            "api_key": "k",
            "api_url": api.url,
            "start_date": START.isoformat(),
            "end_date": END.isoformat(),
            "page_size": page_size,
            "max_concurrent_requests": workers,
            "window_days": data.draw(st.integers(1, 10), "window_days"),
            "lookback_window_days": lookback_days,
            "max_requests_per_minute": 10**9,
        }
        first = run_tap(config, None, kill_at)
        written = check_run(first, history, set(), START - lookback + skew, skew, None)
        states = [m["value"] for m in first if m["type"] == "STATE"]
        state = states[-1] if states else None
        resumed = bookmark_of({"value": state}) if state else None
        for call in logged_late:  # between the runs, dated anywhere, some behind the bookmark
            api.add_call(call)
        run_start = (resumed or START) - lookback

        second = run_tap(config, state, None)
        written_again = check_run(
            second, history + logged_late, written, run_start + skew, skew, resumed
        )

    everything = written | written_again
    due = {c["id"] for c in history if (w := instant(c)) is not None and START <= w < END - skew}
    assert due <= everything, sorted(due - everything)[:5]
    late_due = {
        c["id"]
        for c in logged_late
        if (w := instant(c)) is not None and run_start + skew <= w < END - skew
    }
    assert late_due <= written_again, "calls logged late within the lookback are read"
    final = [bookmark_of(m) for m in second if m["type"] == "STATE"]
    assert final, "a run emits a STATE"
    assert final[-1] == END, "a run read to its end checkpoints its end"


MEETINGS_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "booked_at": {"type": ["string", "null"], "format": "date-time"},
    },
}


class MeetingsStream(AmplemarketStream):
    """A second date-filtered endpoint: a class and a schema, nothing else."""

    name = "meetings"
    path = "/meetings"
    replication_key = "booked_at"
    date_windows = DateWindows("booked_from", "booked_to", first_window_days=2, lookback_days=1)
    schema = MEETINGS_SCHEMA  # in the project, schemas/meetings.json


class Meetings(requests.adapters.BaseAdapter):
    """/meetings in this process: booked_from <= booked_at < booked_to, paged by offset."""

    def __init__(self, meetings: list[dict[str, t.Any]]) -> None:
        super().__init__()
        self.meetings = meetings

    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        params = dict(parse_qsl(urlsplit(str(request.url)).query))
        low, high = parse_timestamp(params["booked_from"]), parse_timestamp(params["booked_to"])
        listed = [m for m in self.meetings if low <= parse_timestamp(m["booked_at"]) < high]
        size, offset = int(params["page[size]"]), int(params.get("page[after]", 0))
        links: dict[str, t.Any] = {"self": {"href": str(request.url)}}
        if offset + size < len(listed):
            following = urlencode({**params, "page[after]": offset + size}, safe="[]:")
            links["next"] = {"href": f"/meetings?{following}"}
        body = {"meetings": listed[offset : offset + size], "_links": links}
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response.raw = io.BytesIO(json.dumps(body).encode())
        response.url, response.request = str(request.url), request
        return response

    def close(self) -> None:
        pass


def test_a_second_date_filtered_endpoint_is_a_class_and_a_schema():
    meetings = [
        {"id": f"m{i:03d}", "booked_at": render(START + datetime.timedelta(hours=7 * i), "z")}
        for i in range(120)
    ]

    class Tap(TapAmplemarket):
        def discover_streams(self) -> list[t.Any]:
            stream = MeetingsStream(tap=self, run_context=self.run_context)
            return [*super().discover_streams(), stream]

    api_url = "http://127.0.0.1:9"  # never connected to: the adapter answers
    config = {
        "api_key": "k",
        "api_url": api_url,
        "start_date": START.isoformat(),
        "end_date": END.isoformat(),
        "page_size": 4,
        "max_requests_per_minute": 10**9,
    }
    buffer = io.BytesIO()
    wrapper = io.TextIOWrapper(buffer, encoding="utf-8")
    with contextlib.redirect_stdout(wrapper):
        tap = Tap(config=config, validate_config=True)
        for name, stream in tap.streams.items():
            stream.selected = name == "meetings"
        tap.streams["meetings"].requests_session.mount(api_url, Meetings(meetings))
        tap.sync_all()
    wrapper.flush()
    messages = parse_messages(buffer.getvalue().decode())

    written = [m["record"]["id"] for m in messages if m["type"] == "RECORD"]
    assert sorted(set(written)) == [meeting["id"] for meeting in meetings]
    bookmarks = [bookmark_of(m, "meetings") for m in messages if m["type"] == "STATE"]
    assert len([b for b in bookmarks if b]) > 3, "a checkpoint after each window"
    assert bookmarks[-1] == END
