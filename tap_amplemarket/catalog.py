"""What the tap makes of an input catalog beyond what the SDK does."""

from __future__ import annotations

import typing as t

from singer_sdk.singerlib import Metadata, StreamMetadata

if t.TYPE_CHECKING:
    from singer_sdk.singerlib import Catalog


def include_keys(catalog: Catalog) -> list[str]:
    """Mark every stream's key properties and replication key `inclusion: automatic`.

    As Singer has them: always emitted (without them a target cannot upsert, and the bookmark
    never moves), whatever the catalog says. A warning for each selected stream whose
    catalog deselected some.
    """
    warnings = []
    for entry in catalog.streams:
        root = entry.metadata.get(())
        stream = root if isinstance(root, StreamMetadata) else StreamMetadata()
        keys = [
            *(entry.key_properties or stream.table_key_properties or ()),
            entry.replication_key or stream.replication_key,
            *(stream.valid_replication_keys or ()),
        ]
        deselected = []
        for name in dict.fromkeys(key for key in keys if key):
            metadata = entry.metadata.get(("properties", name))
            if metadata is None or metadata.inclusion == Metadata.InclusionType.AUTOMATIC:
                continue
            metadata.inclusion = Metadata.InclusionType.AUTOMATIC
            if metadata.selected is False:
                deselected.append(name)
        if deselected and entry.metadata.resolve_selection().get((), True):
            warnings.append(
                f"{entry.tap_stream_id}: the catalog deselects {' and '.join(deselected)}, key "
                "or replication key: emitted anyway (Singer includes those automatically); "
                "select them to silence this"
            )
    return warnings
