"""The endpoints the fake API serves, read off the tap's stream classes: one per stream.

A stream class says all the fake needs: its path, the key of its records in a response, its
largest page, its primary key (whose last field is the page cursor), its schema, and its
parent. A child's path either names the parent's context key (`/lead-lists/{lead_list_id}`:
a detail endpoint, the parent record with its children paged under the records key) or not
(`/tasks`: the key is then a required query filter, `/tasks?user_id=...`).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing as t
from urllib.parse import unquote

from tap_amplemarket.client import AmplemarketStream
from tap_amplemarket.conform import EXTRA
from tap_amplemarket.tap import STREAM_TYPES

if t.TYPE_CHECKING:
    from tap_amplemarket.fake_api.dataset import Record


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """What the fake serves for one stream."""

    stream: str
    path: str  # as the stream requests it, placeholders included
    records_key: str
    primary_keys: tuple[str, ...]
    max_page_size: int | None  # None: not paginated
    replication_key: str | None
    schema: Record = dataclasses.field(repr=False, compare=False)
    parent: str | None = None
    parent_key: str | None = None  # the parent's context key, e.g. "user_id"

    @property
    def cursor_field(self) -> str:
        """The field whose value `page[after]` carries: the last of the primary key."""
        return self.primary_keys[-1]

    @property
    def never_null(self) -> set[str]:
        """Fields every record has a value for: the primary and the replication key."""
        return {*self.primary_keys, *filter(None, [self.replication_key])}

    @property
    def detail(self) -> bool:
        """Whether the parent's id is in the path: records live in their parent record."""
        return self.parent_key is not None and f"{{{self.parent_key}}}" in self.path

    @property
    def required_filters(self) -> tuple[str, ...]:
        return (self.parent_key,) if self.parent_key and not self.detail else ()

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


def declared(stream_type: type[AmplemarketStream], attribute: str) -> str | None:
    """A text attribute the stream class sets (`name`, `path`, `replication_key`), or None:
    the SDK declares them per instance, or as properties for classes that set none."""
    value = inspect.getattr_static(stream_type, attribute, None)
    return value if isinstance(value, str) else None


def api_schema(stream_type: type[AmplemarketStream], name: str) -> Record:
    """The schema of what the API sends for a stream: the stream's own, without `_extra`."""
    # The class attribute is the SDK's StreamSchema descriptor; its source is public.
    source = inspect.getattr_static(stream_type, "schema").schema_source
    schema: Record = source.get_schema(name)
    properties = {k: v for k, v in schema.get("properties", {}).items() if k != EXTRA}
    return {**schema, "properties": properties}


def endpoint(stream_type: type[AmplemarketStream]) -> Endpoint:
    name, path = declared(stream_type, "name"), declared(stream_type, "path")
    if name is None or path is None:
        msg = f"{stream_type.__name__} sets no name or no path"
        raise TypeError(msg)
    parent = stream_type.parent_stream_type
    if parent is not None and not issubclass(parent, AmplemarketStream):
        msg = f"{name}: its parent is not an AmplemarketStream"
        raise TypeError(msg)
    return Endpoint(
        stream=name,
        path=path,
        records_key=stream_type.records_key or name,
        primary_keys=tuple(stream_type.primary_keys),
        max_page_size=stream_type.max_page_size,
        replication_key=declared(stream_type, "replication_key"),
        schema=api_schema(stream_type, name),
        parent=declared(parent, "name") if parent else None,
        parent_key=parent.child_context_key if parent else None,
    )


#: Every stream's endpoint, parents before their children (a class names its parent above it).
ENDPOINTS: tuple[Endpoint, ...] = tuple(endpoint(stream_type) for stream_type in STREAM_TYPES)
