"""Random histories of calls, synced, killed at a random STATE and resumed: nothing is lost.

The tap runs in this process with its real request, retry and paging code; only the
transport is replaced (a requests adapter answering like /calls), so that hundreds of
histories take seconds. Each history draws bursts, same-second clusters, every date form the
tap reads, dates it cannot read, an order (by date or by id, either way), inclusive or
exclusive bounds, a page size, workers, a kill at a random STATE, and calls logged late
before the resume. Checked: every call delivered; none twice within a run; no STATE past a
call not yet written; at most the promised number of calls between two STATEs.

TAP_AMPLEMARKET_PROPERTY_EXAMPLES=5000 runs more histories than CI's few dozen.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from tap_amplemarket.streams import CallsStream
from tap_amplemarket.tap import TapAmplemarket
from tap_amplemarket.timefmt import parse_timestamp, read_instant
from tap_amplemarket.windows import PAGE_BOUND, DateWindows
from tap_amplemarket.writer import CheckpointFlushingWriter
from tests.conftest import parse_messages

EXAMPLES = int(os.environ.get("TAP_AMPLEMARKET_PROPERTY_EXAMPLES", "60"))
UTC = datetime.timezone.utc
API_URL = "http://127.0.0.1:9"  # never connected to: the adapter answers
START = datetime.datetime(2026, 1, 1, tzinfo=UTC)
END = START + datetime.timedelta(days=40)
SPAN_SECONDS = int((END - START).total_seconds())
ONE_SECOND = datetime.timedelta(seconds=1)


def render(when: datetime.datetime, form: str) -> str:
    """`when` written in one of the forms the tap reads."""
    if form == "leap":  # the last instant of a second, written as second 60 of the minute
        return when.strftime("%Y-%m-%dT%H:%M:60Z")
    if form == "offset":
        return when.astimezone(datetime.timezone(datetime.timedelta(hours=2))).isoformat()
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


FORMS = ("z", "z", "z", "lower", "space", "offset", "offset-basic", "comma", "leap")


@st.composite
def calls_of(draw: st.DrawFn, prefix: str, at_most: int) -> list[dict[str, t.Any]]:
    """Groups of calls: one, a burst over minutes or hours, or a cluster in one second."""
    calls: list[dict[str, t.Any]] = []
    for _ in range(draw(st.integers(0, 6))):
        first = draw(st.integers(0, SPAN_SECONDS - 1))
        count = draw(st.sampled_from([1, 2, 5, 30, 80, 150]))
        spread = draw(st.sampled_from([0, 0, 1, 60, 3600, 86400]))
        fractions = draw(st.booleans())
        for index in range(min(count, at_most - len(calls))):
            seconds = first + (index * spread // max(count, 1))
            micro = (index * 7919) % 1_000_000 if fractions else 0
            when = START + datetime.timedelta(seconds=min(seconds, SPAN_SECONDS - 1))
            form = FORMS[(index + first) % len(FORMS)] if draw(st.booleans()) else "z"
            if form == "leap":
                when = when.replace(microsecond=999_999)
            else:
                when = when.replace(microsecond=micro)
            calls.append({"id": f"{prefix}{len(calls):05d}", "start_date": render(when, form)})
    for index in range(draw(st.integers(0, 2))):  # dates the tap cannot place
        calls.append({"id": f"{prefix}x{index}", "start_date": draw(st.sampled_from(["", "soon"]))})
    return calls


def instant(call: dict[str, t.Any], key: str = "start_date") -> datetime.datetime | None:
    read = read_instant(call[key]) if isinstance(call[key], str) else None
    return None if read is None else read[0]


@dataclasses.dataclass
class Listing:
    """/calls as the docs leave it open: the order and the bounds' inclusivity are drawn."""

    calls: list[dict[str, t.Any]]
    order: str  # "date" or "id"
    descending: bool
    from_inclusive: bool
    to_inclusive: bool
    path: str = "/calls"
    records_key: str = "calls"
    date_key: str = "start_date"
    spec: DateWindows = CallsStream.date_windows  # type: ignore[assignment]

    def answer(self, url: str) -> dict[str, t.Any]:
        params = dict(parse_qsl(urlsplit(url).query))
        low = parse_timestamp(params[self.spec.from_param])
        high = parse_timestamp(params[self.spec.to_param])

        def asked(call: dict[str, t.Any]) -> bool:
            when = instant(call, self.date_key)
            if when is None:
                return True  # an API that cannot date it does not filter it out
            above = when >= low if self.from_inclusive else when > low
            below = when <= high if self.to_inclusive else when < high
            return above and below

        def key(call: dict[str, t.Any]) -> tuple[t.Any, ...]:
            when = instant(call, self.date_key) or START
            return (when, call["id"]) if self.order == "date" else (call["id"],)

        listed = sorted(filter(asked, self.calls), key=key, reverse=self.descending)
        size, offset = int(params["page[size]"]), int(params.get("page[after]", 0))
        links: dict[str, t.Any] = {"self": {"href": url}}
        if offset + size < len(listed):
            following = urlencode({**params, "page[after]": offset + size}, safe="[]:")
            links["next"] = {"href": f"{self.path}?{following}"}
        return {self.records_key: listed[offset : offset + size], "_links": links}


class Transport(requests.adapters.BaseAdapter):
    """Answers every request in this process from a Listing."""

    def __init__(self, listing: Listing) -> None:
        super().__init__()
        self.listing = listing
        self.requests = 0

    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        self.requests += 1
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response.raw = io.BytesIO(json.dumps(self.listing.answer(str(request.url))).encode())
        response.url, response.request = str(request.url), request
        return response

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def no_metrics() -> t.Iterator[None]:
    """The SDK's METRIC line per request: half the time of these runs, and read by none."""
    metrics = logging.getLogger("singer_sdk.metrics")
    metrics.disabled = True
    yield
    metrics.disabled = False


class Killed(BaseException):
    pass


class Run(t.NamedTuple):
    messages: list[dict[str, t.Any]]
    requests: int


def run_tap(
    listing: Listing, config: dict[str, t.Any], state: dict | None, kill_at: int | None
) -> Run:
    """One run of the tap (calls only), SIGKILLed in effect right after its `kill_at`th STATE."""

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
    transport = Transport(listing)
    with contextlib.redirect_stdout(wrapper), contextlib.suppress(Killed):
        tap = Tap(config=config, state=state, validate_config=True)
        for name, stream in tap.streams.items():
            stream.selected = name == listing.records_key
        tap.streams[listing.records_key].requests_session.mount(API_URL, transport)
        try:
            tap.sync_all()
        finally:
            tap.message_writer.flush()  # as at exit: RECORDs after a STATE equal to the last
    wrapper.flush()
    return Run(parse_messages(buffer.getvalue().decode()), transport.requests)


def bookmark_of(message: dict[str, t.Any], stream: str = "calls") -> datetime.datetime | None:
    value = message["value"]["bookmarks"].get(stream, {}).get("replication_key_value")
    return parse_timestamp(value) if value else None


def densest_second(calls: list[dict[str, t.Any]]) -> int:
    """The most calls in any one second-long stretch: a window that narrow is never cut."""
    times = sorted(when for call in calls if (when := instant(call)) is not None)
    most, first = 0, 0
    for last, when in enumerate(times):
        while when - times[first] >= ONE_SECOND:
            first += 1
        most = max(most, last - first + 1)
    return most


def check_run(
    run: Run,
    history: list[dict[str, t.Any]],
    delivered_before: set[str],
    late: set[str],
    page_size: int,
    resumed_from: datetime.datetime | None = None,
) -> set[str]:
    """The run's own promises; returns the ids it delivered."""
    written: list[str] = []
    since_state = 0
    undated = sum(instant(call) is None for call in history)
    limit = max(PAGE_BOUND * page_size, densest_second(history)) + undated
    dates = {call["id"]: instant(call) for call in history}
    previous: datetime.datetime | None = None
    for message in run.messages:
        if message["type"] == "RECORD":
            written.append(message["record"]["id"])
            when = dates[written[-1]]
            # The lookback's re-read moves no bookmark: the STATE equal to the last is not sent.
            since_state += resumed_from is None or (when is not None and when > resumed_from)
        elif message["type"] == "STATE" and (bookmark := bookmark_of(message)) is not None:
            assert since_state <= limit, (since_state, limit)
            since_state = 0
            assert previous is None or bookmark >= previous, "the bookmark moved back"
            previous = bookmark
            done = delivered_before | set(written)
            behind = [
                call["id"]
                for call in history
                if (when := instant(call)) is not None
                and when < bookmark
                and call["id"] not in done | late
            ]
            assert behind == [], f"a STATE at {bookmark} passed calls not written: {behind[:5]}"
    assert len(written) == len(set(written)), "a call written twice in one run"
    return set(written)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES <= 100,  # CI: the same histories every run
)
@given(
    history=calls_of("a", 250),
    logged_late=calls_of("b", 60),
    order=st.sampled_from(["date", "id"]),
    descending=st.booleans(),
    from_inclusive=st.booleans(),
    to_inclusive=st.booleans(),
    page_size=st.sampled_from([1, 2, 3, 5]),
    workers=st.integers(1, 4),
    window_days=st.integers(1, 10),
    lookback_days=st.integers(0, 3),
    kill_at=st.one_of(st.none(), st.integers(1, 12)),
)
def test_random_histories_killed_and_resumed_lose_nothing(
    history,
    logged_late,
    order,
    descending,
    from_inclusive,
    to_inclusive,
    page_size,
    workers,
    window_days,
    lookback_days,
    kill_at,
):
    listing = Listing(list(history), order, descending, from_inclusive, to_inclusive)
    config = {
        "api_key": "k",
        "api_url": API_URL,
        "start_date": START.isoformat(),
        "end_date": END.isoformat(),
        "page_size": page_size,
        "max_concurrent_requests": workers,
        "window_days": window_days,
        "lookback_window_days": lookback_days,
        "max_requests_per_minute": 10**9,
    }

    first = run_tap(listing, config, None, kill_at)
    delivered = check_run(first, history, set(), set(), page_size)
    states = [m["value"] for m in first.messages if m["type"] == "STATE"]
    state = states[-1] if states else None
    resumed_from = bookmark_of({"value": state}) if state else None
    run_start = START
    if resumed_from is not None:
        run_start = max(START, resumed_from - datetime.timedelta(days=lookback_days))
    listing.calls += logged_late  # between the runs, dated anywhere, some behind the bookmark
    late = {call["id"] for call in logged_late}

    second = run_tap(listing, config, state, None)
    delivered_again = check_run(second, listing.calls, delivered, late, page_size, resumed_from)

    undated = {call["id"] for call in listing.calls if instant(call) is None}
    assert undated <= delivered_again, "a call without a date is delivered once every run"
    everything = {call["id"] for call in history}
    assert everything <= delivered | delivered_again, everything - delivered - delivered_again
    picked_up = {
        call["id"]
        for call in logged_late
        if (when := instant(call)) is not None and when >= run_start
    }
    assert picked_up <= delivered_again, "calls logged late within the lookback are read"
    final = [m for m in second.messages if m["type"] == "STATE"]
    newest = max((w for c in listing.calls if (w := instant(c)) is not None), default=None)
    if final and newest is not None and newest >= run_start:
        assert bookmark_of(final[-1]) == max(newest, resumed_from or newest)


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


def test_a_second_date_filtered_endpoint_is_a_class_and_a_schema():
    meetings = [
        {"id": f"m{i:03d}", "booked_at": render(START + datetime.timedelta(hours=7 * i), "z")}
        for i in range(120)
    ]
    listing = Listing(
        meetings, "id", False, True, False, path="/meetings", records_key="meetings",
        date_key="booked_at", spec=MeetingsStream.date_windows,  # type: ignore[arg-type]
    )  # fmt: skip

    class Tap(TapAmplemarket):
        def discover_streams(self) -> list[t.Any]:
            stream = MeetingsStream(tap=self)
            return [*super().discover_streams(), stream]

    config = {
        "api_key": "k",
        "api_url": API_URL,
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
        tap.streams["meetings"].requests_session.mount(API_URL, Transport(listing))
        tap.sync_all()
    wrapper.flush()
    messages = parse_messages(buffer.getvalue().decode())

    written = [m["record"]["id"] for m in messages if m["type"] == "RECORD"]
    assert sorted(written) == [meeting["id"] for meeting in meetings]
    bookmarks = [bookmark_of(m, "meetings") for m in messages if m["type"] == "STATE"]
    assert len([b for b in bookmarks if b]) > 3, "a checkpoint after each window"
    assert bookmarks[-1] == max(parse_timestamp(m["booked_at"]) for m in meetings)
