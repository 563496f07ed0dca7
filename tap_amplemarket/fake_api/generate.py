"""Plausible records made from a stream's schema, for streams the sample data leaves out.

A new stream is served from its schema alone: ids are uuids, emails, urls, dates and
date-times look like them, and every value fits the schema. Each stream draws from a random
source of its own, seeded by its name, so the sample data's values do not move.
"""

from __future__ import annotations

import datetime
import random
import typing as t
import uuid

from tap_amplemarket.timefmt import isoformat_z

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from tap_amplemarket.fake_api.dataset import Dataset, Record
    from tap_amplemarket.fake_api.endpoints import Endpoint


#: Records made for a stream without a parent: pages of 5 span three pages.
TOP_LEVEL_RECORDS = 12
#: Records made for each parent record of a child stream.
RECORDS_PER_PARENT = 3
#: Share of nullable fields left null.
NULL_SHARE = 0.1
#: The parent field children are keyed by (as `AmplemarketStream.get_child_context` reads).
PARENT_ID = "id"
EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def json_types(schema: Record) -> list[str]:
    types = schema.get("type", [])
    return [types] if isinstance(types, str) else list(types)


class RecordMaker:
    """Records for one stream's schema, from a random source of the stream's own."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.rng = random.Random(endpoint.stream)
        self.made = 0

    def record(self, **fixed: t.Any) -> Record:
        """A record with every property of the schema, its keys never null."""
        self.made += 1
        record = self.object_value(self.endpoint.schema, keys=self.endpoint.never_null)
        record.update(fixed)
        return record

    def object_value(self, schema: Record, keys: t.AbstractSet[str] = frozenset()) -> Record:
        return {
            name: self.value(name, prop, key=name in keys)
            for name, prop in schema.get("properties", {}).items()
        }

    def value(self, name: str, schema: Record, *, key: bool = False) -> t.Any:
        types = json_types(schema)
        kinds = [kind for kind in types if kind != "null"]
        if not kinds or ("null" in types and not key and self.rng.random() < NULL_SHARE):
            return None
        if "enum" in schema:
            return self.rng.choice([option for option in schema["enum"] if option is not None])
        kind = kinds[0]
        if kind == "object":
            return self.object_value(schema)
        if kind == "array":
            items = schema.get("items", {})
            return [self.value(name, items) for _ in range(self.rng.randrange(3))]
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "integer":
            return self.made if key else self.rng.randrange(1000)
        if kind == "number":
            return round(self.rng.uniform(0, 1000), 2)
        return self.text(name, schema.get("format"), unique=key)

    def text(self, name: str, text_format: str | None, *, unique: bool) -> str:
        rng = self.rng
        serial = self.made if unique else rng.randrange(1000)
        if text_format in {"date-time", "date"}:
            when = EPOCH + datetime.timedelta(seconds=rng.randrange(180 * 86400))
            return isoformat_z(when) if text_format == "date-time" else when.date().isoformat()
        if name == "id" or name.endswith("_id"):
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if "email" in name:
            return f"{self.endpoint.stream}{serial}@example.com"
        if name.endswith("url"):
            return f"https://example.com/{self.endpoint.stream}/{serial}"
        if "domain" in name:
            return f"{self.endpoint.stream.replace('_', '-')}{serial}.example"
        return f"{name.replace('_', ' ').capitalize()} {serial}"


def fill_missing(data: Dataset, endpoints: Iterable[Endpoint]) -> None:
    """Give every stream that `data` has no records for records made from its schema.

    A child's records are made per parent record, with the parent's id (where the API
    filters on it, or the schema declares it); a detail endpoint's go into their parent
    record, under its records key.
    """
    for endpoint in endpoints:
        maker = RecordMaker(endpoint)
        if endpoint.detail:
            for parent in parent_records(data, endpoint):
                if endpoint.records_key not in parent:
                    parent[endpoint.records_key] = children(maker, endpoint, parent)
        elif endpoint.stream not in data:
            data[endpoint.stream] = (
                [maker.record() for _ in range(TOP_LEVEL_RECORDS)]
                if endpoint.parent_key is None
                else [
                    child
                    for parent in parent_records(data, endpoint)
                    for child in children(maker, endpoint, parent)
                ]
            )


def children(maker: RecordMaker, endpoint: Endpoint, parent: Record) -> list[Record]:
    key = endpoint.parent_key or ""
    keyed = not endpoint.detail or key in endpoint.schema.get("properties", {})
    fixed = {key: parent[PARENT_ID]} if keyed else {}
    return [maker.record(**fixed) for _ in range(RECORDS_PER_PARENT)]


def parent_records(data: Dataset, endpoint: Endpoint) -> list[Record]:
    parents = data.get(endpoint.parent, []) if endpoint.parent else []
    return [record for record in parents if isinstance(record, dict)]
