"""The manifest as the Connector Builder keeps it (resolved by the CDK's `connector_builder`
handler, migrated and normalised as the Builder's web app asks), test-read stream by stream as
the Builder does, and read by `source-declarative-manifest` against hostile or cut answers."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import subprocess
import typing as t
from urllib.parse import quote, quote_plus, urlencode

import yaml
from airbyte_protocol.models import Type
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts.generate_manifest import api_url
from tap_amplemarket.tap import STREAM_TYPES
from tests.test_airbyte import configured_catalog
from tests_manifest.conftest import (
    END,
    MANIFEST,
    FakeAmplemarketAPI,
    Run,
    builder,
    run_manifest,
)

SCHEMA = pathlib.Path(os.environ.get("SOURCE_DECLARATIVE_MANIFEST", "")).parent.parent.glob(
    "lib/python*/site-packages/airbyte_cdk/sources/declarative/declarative_component_schema.yaml"
)
#: A test read's limit of pages per slice (the CDK's default, which the Builder uses).
PAGES_PER_SLICE = 5


def read(
    tmp_path: pathlib.Path,
    config: dict[str, t.Any],
    manifest: pathlib.Path,
    streams: t.Collection[str],
) -> Run:
    discovered = run_manifest("discover", tmp_path, config, manifest=manifest)
    (catalog,) = discovered.of_type(Type.CATALOG)
    configured = configured_catalog(catalog, streams, full_refresh=streams)
    return run_manifest("read", tmp_path, config, catalog=configured, manifest=manifest)


def deprecated_fields(node: t.Any, definitions: dict[str, t.Any]) -> list[str]:
    """Every field of a component the CDK's schema marks deprecated (the Builder warns)."""
    found = []
    if isinstance(node, dict):
        kind = node.get("type")
        properties = (
            definitions.get(kind, {}).get("properties", {}) if isinstance(kind, str) else {}
        )
        found += [
            f"{node['type']}.{key}" for key in node if properties.get(key, {}).get("deprecated")
        ]
        for value in node.values():
            found += deprecated_fields(value, definitions)
    elif isinstance(node, list):
        for item in node:
            found += deprecated_fields(item, definitions)
    return found


def test_the_builder_keeps_the_manifest_as_generated(resolved_manifest):
    resolved = json.loads(resolved_manifest.read_text())
    generated = yaml.safe_load(MANIFEST.read_text())

    assert "applied_migrations" not in resolved.get("metadata", {}), "migrated on import"
    urls = [stream["retriever"]["requester"]["url"] for stream in resolved["streams"]]
    expected = [
        generated["definitions"]["streams"][s.name]["retriever"]["requester"]["url"]
        for s in STREAM_TYPES
    ]
    assert urls == expected
    assert all(url.startswith(api_url()) for url in urls)  # the default api_url kept whole
    (schema,) = SCHEMA
    definitions = yaml.safe_load(schema.read_text())["definitions"]
    assert deprecated_fields(resolved, definitions) == []
    start_date = resolved["spec"]["connection_specification"]["properties"]["start_date"]
    assert "test read of calls" in start_date["description"]  # it shows the first windows only


def test_a_test_read_of_each_stream_shows_its_pages_whole(api, config, tmp_path, resolved_manifest):
    """In the Builder each stream shows its pages up to the test read's limits, every page an
    answer of the API, every record of it shown; calls, with a recent start_date."""
    manifest = json.loads(resolved_manifest.read_text())
    recent = END - datetime.timedelta(days=14)
    config = {**config, "page_size": 10, "start_date": recent.isoformat()}
    names = [stream_type.name for stream_type in STREAM_TYPES]
    for name, read in zip(names, builder("test_read", manifest, config, names), strict=True):
        pages = [page for piece in read["slices"] for page in piece["pages"]]
        assert [page["response"]["status"] for page in pages] == [200] * len(pages), name
        assert sum(len(page["records"]) for page in pages) > 0, name
        for piece in read["slices"]:
            last = json.loads(piece["pages"][-1]["response"]["body"])
            more = last.get("_links", {}).get("next")
            assert not more or len(piece["pages"]) == PAGES_PER_SLICE, f"{name} stopped early"
        assert not [log for log in read["logs"] if log["level"] in {"WARN", "ERROR"}], name


#: Next links that a `urljoin` (what the CDK does with a RequestPath) turns into another host.
HOSTILE_LINKS = [
    "/ //{elsewhere}/x{query}",
    "/\x01//{elsewhere}/x{query}",
    "/ \t//{elsewhere}/x{query}",
]


def test_no_next_link_takes_the_key_to_another_host(api, config, tmp_path, resolved_manifest):
    """Only the cursor of a next link is read: each of these forms, and an absolute link to
    another origin, leaves the listing on api_url, read whole, and the key with it."""
    config = {**config, "page_size": 10}
    streams = ["sequences", "accounts", "excluded_domains", "excluded_emails"]
    with FakeAmplemarketAPI(api_key="other") as elsewhere:
        netloc = elsewhere.url.removeprefix("http://")
        links = [*HOSTILE_LINKS, "http://{elsewhere}/x{query}"]
        for stream, link in zip(streams, links, strict=True):
            href = link.format(elsewhere=netloc, query="{query}")
            api.fail_next("link", times=None, path=f"/{stream.replace('_', '-')}", href=href)

        run = read(tmp_path, config, resolved_manifest, streams)

        assert elsewhere.requests == [], "the key went to another host"
    assert run.returncode == 0, run.errors
    for stream in streams:
        assert len(run.records(stream)) == len(api.data[stream]) > 10, stream


def raw_page(body: bytes, content_type: bytes = b"application/json") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nConnection: close\r\n" % content_type
    return head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def test_a_listing_cut_short_fails_its_stream(api, config, tmp_path, resolved_manifest):
    """Page 2 of each stream in a shape the manifest cannot read: each stream fails,
    INCOMPLETE, and the run exits non-zero, so Overwrite keeps the table it had."""
    config = {**config, "page_size": 5}
    after = {"after": 1}
    api.fail_next("next-as", path="/sequences", value={"url": "{next}"}, **after)
    api.fail_next("link", path="/accounts", href="/accounts?page[size]=5", **after)
    api.fail_next("records-as", path="/excluded-domains", value=None, **after)
    under_another_key = json.dumps({"results": [{"email": "a@b.c"}], "_links": {}}).encode()
    api.fail_next("raw", path="/excluded-emails", raw=raw_page(under_another_key), **after)
    html = raw_page(b"<html><body>Maintenance</body></html>", b"text/html")
    api.fail_next("raw", path="/lead-lists", raw=html, **after)
    cut = ["sequences", "accounts", "excluded_domains", "excluded_emails", "lead_lists"]

    run = read(tmp_path, {**config, "page_size": 5}, resolved_manifest, cut)

    assert run.returncode != 0
    for stream in cut:
        assert run.statuses()[stream][-1] == "INCOMPLETE", stream
        assert 5 <= len(run.records(stream)) <= 10, stream  # pages 1 and 2 at most


def test_check_gives_up_after_one_retry(api, config, tmp_path):
    """`check` against an API that only fails answers in seconds: two attempts, not nine."""
    api.fail_next("503", times=None)

    (status,) = run_manifest("check", tmp_path, config).of_type(Type.CONNECTION_STATUS)

    assert status.status.value == "FAILED"
    assert len(api.requests) == 2


#: Run in .venv-cdk: the manifest's cursor template on each next link of stdin (JSON), as
#: CursorPagination evaluates it; prints the cursor or the error, one JSON line per link.
EVALUATE_CURSOR = """
import json, sys, yaml
from airbyte_cdk.sources.declarative.interpolation.jinja import JinjaInterpolation
manifest = yaml.safe_load(open(sys.argv[1]))
paginator = manifest["definitions"]["streams"]["users"]["retriever"]["paginator"]
template = paginator["pagination_strategy"]["cursor_value"]
for href in json.load(sys.stdin):
    try:
        cursor = JinjaInterpolation().eval(template, {}, response={"_links": {"next": href}})
        print(json.dumps({"cursor": cursor}))
    except Exception as exc:
        print(json.dumps({"error": str(exc)}))
"""


def cursors(links: list[t.Any]) -> list[dict[str, t.Any]]:
    python = pathlib.Path(os.environ["SOURCE_DECLARATIVE_MANIFEST"]).with_name("python")
    answers = subprocess.run(
        [python, "-c", EVALUATE_CURSOR, MANIFEST],
        input=json.dumps(links),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [json.loads(line) for line in answers]


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.text(min_size=1), min_size=100, max_size=100))
def test_the_cursor_is_read_out_of_the_next_link_and_decoded_once(values):
    """Whatever the cursor (an email, digits, any text) and however the API encodes it, the
    manifest sends back exactly the cursor the API decodes from its link."""
    links = []
    for index, value in enumerate(values):
        quote_via = quote_plus if index % 2 else quote
        query = urlencode({"page[size]": "7", "page[after]": value}, quote_via=quote_via)
        links.append({"href": f"/excluded-emails?{query}"})
    assert cursors(links) == [{"cursor": value} for value in values]


def test_a_next_link_without_a_cursor_it_can_read_is_an_error():
    unreadable = [{"url": "/users?page[after]=x"}, "/users?page[after]=x", {"href": "/users"}]
    unreadable += [{"href": "/users?page[after]="}, {"href": 7}, {"href": ""}]
    for link, answer in zip(unreadable, cursors(unreadable), strict=True):
        assert "without a page[after] cursor" in answer.get("error", ""), link
    assert cursors([{"href": "/users?page[after]=0"}]) == [{"cursor": "0"}]
