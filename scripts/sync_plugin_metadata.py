"""Write what the tap declares into meltano.yml, README.md and docs/streams.md.

The tap is the one declaration of its settings (`TapAmplemarket.config_jsonschema` plus the
SDK's built-in ones), its capabilities and its stream schemas. This script renders them as
meltano.yml's extractor entry, README's settings and streams tables, and docs/streams.md:

    python scripts/sync_plugin_metadata.py          # rewrite the files (`make metadata`)
    python scripts/sync_plugin_metadata.py --check  # name the files that drift; exit 1 if any

tests/test_plugin_metadata.py fails on any drift, so a setting or field added to the tap
without running this is caught.
"""

from __future__ import annotations

import io
import pathlib
import sys
import typing as t
from importlib import metadata

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq

from tap_amplemarket.tap import TapAmplemarket

ROOT = pathlib.Path(__file__).resolve().parent.parent
MELTANO_YML = ROOT / "meltano.yml"
README = ROOT / "README.md"
STREAMS_DOC = ROOT / "docs" / "streams.md"
GENERATOR = "scripts/sync_plugin_metadata.py"

#: Meltano setting kinds for JSON schema types; a secret is a sensitive string.
MELTANO_KINDS = {
    "string": "string",
    "integer": "integer",
    "number": "decimal",
    "boolean": "boolean",
    "object": "object",
    "array": "array",
}
#: The order in which Meltano itself writes a setting's keys (`meltano config set` rewrites
#: the whole file in its canonical form, so anything else would be churned on the next set).
MELTANO_SETTING_KEYS = ("name", "kind", "value", "label", "description", "sensitive")


def json_types(prop: dict[str, t.Any]) -> list[str]:
    types = prop.get("type", [])
    return [types] if isinstance(types, str) else list(types)


def meltano_kind(prop: dict[str, t.Any]) -> str:
    if prop.get("format") == "date-time":
        return "date_iso8601"
    (json_type,) = [kind for kind in json_types(prop) if kind != "null"]
    return MELTANO_KINDS[json_type]


def meltano_settings(schema: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    settings = []
    for name, prop in schema["properties"].items():
        setting = {
            "name": name,
            "kind": meltano_kind(prop),
            "value": prop.get("default"),
            "label": prop.get("title"),
            "description": " ".join(prop.get("description", "").split()) or None,
            "sensitive": True if prop.get("secret") else None,
        }
        settings.append({key: setting[key] for key in MELTANO_SETTING_KEYS if setting[key]})
    return settings


def yaml_io() -> YAML:
    """ruamel as Meltano configures it: round trip, no wrapping, lists not indented."""
    yaml = YAML()
    yaml.width = sys.maxsize
    yaml.indent(mapping=2, sequence=2, offset=0)
    return yaml


def flow(items: t.Iterable[t.Any]) -> CommentedSeq:
    """A YAML list written on one line, as meltano.yml writes capabilities."""
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def repository_url() -> str:
    urls = metadata.metadata("tap-amplemarket").get_all("Project-URL") or []
    (url,) = [url.split(", ", 1)[1] for url in urls if url.startswith("Repository, ")]
    return url


def custom_extractor_yaml() -> str:
    """The extractor entry another Meltano project needs: installed from the repository."""
    schema = TapAmplemarket.settings_jsonschema()
    essential = {"api_key", "start_date", "end_date"}
    extractor = {
        "name": TapAmplemarket.name,
        "namespace": "tap_amplemarket",
        "pip_url": f"git+{repository_url()}.git",
        "executable": TapAmplemarket.name,
        "capabilities": flow(str(c) for c in TapAmplemarket.capabilities),
        "settings": [s for s in meltano_settings(schema) if s["name"] in essential],
    }
    out = io.StringIO()
    yaml_io().dump({"plugins": {"extractors": [extractor]}}, out)
    return f"```yaml\n{out.getvalue()}```"


def render_meltano_yml(text: str) -> str:
    """meltano.yml with the extractor's capabilities and settings as the tap declares them."""
    yaml = yaml_io()
    project = yaml.load(text)
    (extractor,) = [p for p in project["plugins"]["extractors"] if p["name"] == TapAmplemarket.name]
    schema = TapAmplemarket.settings_jsonschema()
    extractor["capabilities"] = flow(str(c) for c in TapAmplemarket.capabilities)
    extractor["settings_group_validation"] = [flow(schema.get("required", []))]
    extractor["settings"] = meltano_settings(schema)
    out = io.StringIO()
    yaml.dump(project, out)
    return out.getvalue()


def cell(text: t.Any) -> str:
    """One Markdown table cell: a single line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(":---" for _ in header) + "|",
        *("| " + " | ".join(cell(value) for value in row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def settings_table() -> str:
    schema = TapAmplemarket.settings_jsonschema()
    required = set(schema.get("required", []))
    return table(
        ["Setting", "Type", "Required", "Default", "Description"],
        [
            [
                f"`{name}`",
                type_label({**prop, "type": [k for k in json_types(prop) if k != "null"]}),
                "yes" if name in required else "",
                f"`{prop['default']}`" if "default" in prop else "",
                prop.get("description", ""),
            ]
            for name, prop in schema["properties"].items()
        ],
    )


def tap_streams() -> list[t.Any]:
    """The tap's streams with their final schemas (no request is made)."""
    config = {"api_key": "unused", "api_url": "https://api.amplemarket.com"}
    tap = TapAmplemarket(config=config, parse_env_config=False, validate_config=True)
    return tap.discover_streams()


def endpoint(stream: t.Any) -> str:
    parent = stream.parent_stream_type
    if parent is None:
        return f"`GET {stream.path}`"
    key = getattr(parent, "child_context_key", None)
    query = f"?{key}={{{key}}}" if key and f"{{{key}}}" not in stream.path else ""
    return f"`GET {stream.path}{query}` for each `{parent.name}` record"


def replication(stream: t.Any) -> str:
    if stream.replication_key:
        return f"incremental on `{stream.replication_key}`"
    return "full table"


def streams_table(link_prefix: str = "") -> str:
    return table(
        ["Stream", "Endpoint", "Primary key", "Replication"],
        [
            [
                f"[{s.name}]({link_prefix}#{s.name})",
                endpoint(s),
                ", ".join(f"`{key}`" for key in s.primary_keys),
                replication(s),
            ]
            for s in tap_streams()
        ],
    )


def type_label(prop: dict[str, t.Any]) -> str:
    types = json_types(prop)
    named = [
        f"{kind} ({prop['format']})" if kind == "string" and "format" in prop else kind
        for kind in types
    ]
    return " or ".join(named)


def field_rows(properties: dict[str, t.Any], prefix: str = "") -> t.Iterator[list[str]]:
    """One row per field, nested object fields as `parent.child`, array items as `parent[]`."""
    for name, prop in properties.items():
        path = f"{prefix}{name}"
        yield [f"`{path}`", type_label(prop), prop.get("description", "")]
        yield from field_rows(prop.get("properties", {}), f"{path}.")
        items = prop.get("items", {})
        yield from field_rows(items.get("properties", {}), f"{path}[].")


def undescribed_fields() -> list[str]:
    """`stream.field` of every field without a description (there should be none)."""
    return [
        f"{stream.name}.{row[0].strip('`')}"
        for stream in tap_streams()
        for row in field_rows(stream.schema["properties"])
        if not row[2]
    ]


def render_streams_doc() -> str:
    parts = [
        "# Streams",
        "",
        f"<!-- Generated by {GENERATOR} from the tap's stream schemas: edit "
        "tap_amplemarket/schemas/*.json and run `make metadata`. -->",
        "",
        "Every stream, the endpoint it reads and each field it writes, with its JSON Schema "
        "type. A field whose type includes `null` may be null or absent in a record.",
        "",
        streams_table(),
    ]
    for stream in tap_streams():
        parts += [
            "",
            f"## {stream.name}",
            "",
            stream.schema.get("description", ""),
            "",
            f"{endpoint(stream)}; primary key "
            f"{', '.join(f'`{key}`' for key in stream.primary_keys)}; {replication(stream)}.",
            "",
            table(["Field", "Type", "Description"], list(field_rows(stream.schema["properties"]))),
        ]
    return "\n".join(parts) + "\n"


def replace_between(text: str, name: str, body: str) -> str:
    """Replace what lies between `<!-- name:start -->` and `<!-- name:end -->`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"README.md lacks the {start} ... {end} markers")
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    note = f"<!-- Generated by {GENERATOR}: edit the tap, then run `make metadata`. -->"
    return f"{head}{start}\n{note}\n\n{body}\n\n{end}{tail}"


def render_readme(text: str) -> str:
    text = replace_between(text, "settings", settings_table())
    text = replace_between(text, "custom-extractor", custom_extractor_yaml())
    return replace_between(text, "streams", streams_table("docs/streams.md"))


def rendered() -> dict[pathlib.Path, str]:
    """Each generated file's expected content."""
    return {
        MELTANO_YML: render_meltano_yml(MELTANO_YML.read_text()),
        README: render_readme(README.read_text()),
        STREAMS_DOC: render_streams_doc(),
    }


def drift() -> list[pathlib.Path]:
    """The generated files whose content is not what the tap declares."""
    return [
        path for path, text in rendered().items() if not path.exists() or path.read_text() != text
    ]


def main(argv: list[str]) -> None:
    if "--check" in argv:
        if stale := drift():
            names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
            raise SystemExit(f"{names} differ from the tap: run `make metadata`")
        return
    for path, text in rendered().items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
