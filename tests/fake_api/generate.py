"""Records for an endpoint the dataset leaves out (a stream just added): copies of the
endpoint's documented example, each with keys of its own."""

from __future__ import annotations

import copy
import random
import typing as t
import uuid

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from tests.fake_api.dataset import Dataset, Record
    from tests.fake_api.endpoints import Endpoint

#: Records made for an endpoint without a parent: pages of 5 span three pages.
TOP_LEVEL_RECORDS = 12
#: Records made for each parent record of a child endpoint.
RECORDS_PER_PARENT = 3
#: The parent field children are keyed by.
PARENT_ID = "id"


def made_records(endpoint: Endpoint, count: int, **fixed: t.Any) -> list[Record]:
    rng = random.Random(f"{endpoint.stream}{fixed}")
    records = []
    for serial in range(count):
        record = copy.deepcopy(endpoint.example)
        for key in endpoint.primary_keys:
            if key not in fixed and key != endpoint.parent_key:
                record[key] = f"{key}-{serial}-{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        record.update(fixed)
        records.append(record)
    return records


def fill_missing(data: Dataset, endpoints: Iterable[Endpoint]) -> None:
    """Give every endpoint that `data` has no records for copies of its example; a child's
    are made per parent record, with the parent's id; a detail endpoint's go into their
    parent record, under its records key."""
    for endpoint in endpoints:
        key = endpoint.parent_key or ""
        if endpoint.detail:
            for parent in parent_records(data, endpoint):
                parent.setdefault(endpoint.records_key, made_records(endpoint, RECORDS_PER_PARENT))
        elif endpoint.stream not in data:
            data[endpoint.stream] = (
                made_records(endpoint, TOP_LEVEL_RECORDS)
                if endpoint.parent is None
                else [
                    child
                    for parent in parent_records(data, endpoint)
                    for child in made_records(
                        endpoint, RECORDS_PER_PARENT, **{key: parent[PARENT_ID]}
                    )
                ]
            )


def parent_records(data: Dataset, endpoint: Endpoint) -> list[Record]:
    parents = data.get(endpoint.parent, []) if endpoint.parent else []
    return [record for record in parents if isinstance(record, dict)]
