"""The streams' JSON schemas, one file per stream.

Each top-level field says where it comes from in FIELD_SOURCE: "doc" (in the API's
documentation), "example" (only in a documented example payload), "PostHog" (PostHog's
open-source Amplemarket source reads it; no Amplemarket page read names it) or
"undocumented: <why the tap keeps it>". docs/streams.md is generated from it
(scripts/sync_plugin_metadata.py).
"""

from __future__ import annotations

import typing as t

from singer_sdk import SchemaDirectory
from typing_extensions import override

from tap_amplemarket.conform import with_extra_column

if t.TYPE_CHECKING:
    from singer_sdk.schema.source import Schema

FIELD_SOURCE = "x-source"


class SchemaFiles(SchemaDirectory):
    """`schemas/<stream name>.json`, each with the `_extra` column added (here, not per file)."""

    @override
    def fetch_schema(self, key: str) -> Schema:
        return with_extra_column(super().fetch_schema(key))
