"""The one home for reading and writing timestamps (the tap, its streams and the fake API).

Standard library only: the fake API's sample data imports it in PyAirbyte's test virtualenv,
which lacks the tap's dependencies.
"""

from __future__ import annotations

import datetime

UTC = datetime.timezone.utc


def parse_timestamp(value: str) -> datetime.datetime:
    """An ISO 8601 timestamp; naive values are taken as UTC. Raises ValueError."""
    # Python 3.10's fromisoformat does not read a trailing "Z".
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def isoformat_z(value: datetime.datetime) -> str:
    """`value` in UTC, to the second: the API's own form, whose text order is time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
