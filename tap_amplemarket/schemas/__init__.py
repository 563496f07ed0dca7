"""The streams' JSON schemas, one file per stream.

Each top-level field says where it comes from in FIELD_SOURCE: "doc" (in the API's
documentation), "example" (only in a documented example payload), "PostHog" (PostHog's
open-source Amplemarket source reads it; no Amplemarket page read names it) or
"undocumented: <why the tap keeps it>". docs/streams.md is generated from it
(scripts/sync_plugin_metadata.py).
"""

FIELD_SOURCE = "x-source"
