"""A plain Singer SDK tap of the calls endpoint, written as the SDK's cookiecutter writes one:
one RESTStream, bearer token, the next link followed, the SDK's own type conformance, nothing
overridden for speed. bench/cpu_per_record.py runs it as the cost of the SDK alone.

Usage: python bench/plain_sdk_tap.py --config config.json (api_key, api_url, start_date,
end_date); Singer messages on stdout.
"""

from __future__ import annotations

import json
import pathlib
import typing as t
from urllib.parse import parse_qsl

from singer_sdk import RESTStream, Tap
from singer_sdk import typing as th
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.pagination import BaseHATEOASPaginator

if t.TYPE_CHECKING:
    from urllib.parse import ParseResult

    import requests

SCHEMA = pathlib.Path(__file__).resolve().parents[1] / "tap_amplemarket" / "schemas" / "calls.json"


class NextLinkPaginator(BaseHATEOASPaginator):
    def get_next_url(self, response: requests.Response) -> str | None:
        link = response.json().get("_links", {}).get("next")
        return link["href"] if link else None


class CallsStream(RESTStream["ParseResult"]):
    name = "calls"
    path = "/calls"
    primary_keys = ("id",)
    records_jsonpath = "$.calls[*]"
    schema = json.loads(SCHEMA.read_text())
    # The SDK's conformance raises KeyError on an object without `properties` (transcript
    # entries are kept whole): declared empty here, as a developer of such a tap would.
    schema["properties"]["transcript"]["items"].setdefault("properties", {})

    @property
    def url_base(self) -> str:
        return str(self.config["api_url"])

    @property
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.config["api_key"])

    def get_new_paginator(self) -> NextLinkPaginator:
        return NextLinkPaginator()

    def get_url_params(
        self, context: t.Any, next_page_token: ParseResult | None
    ) -> dict[str, t.Any]:
        if next_page_token:
            return dict(parse_qsl(next_page_token.query))
        return {
            "page[size]": 100,
            "start_date_from": self.config["start_date"],
            "start_date_to": self.config["end_date"],
        }


class TapPlainAmplemarket(Tap):
    name = "tap-plain-amplemarket"
    config_jsonschema = th.PropertiesList(
        th.Property("api_key", th.StringType, required=True, secret=True),
        th.Property("api_url", th.StringType, required=True),
        th.Property("start_date", th.StringType, required=True),
        th.Property("end_date", th.StringType, required=True),
    ).to_dict()

    def discover_streams(self) -> list[CallsStream]:
        return [CallsStream(self)]


if __name__ == "__main__":
    TapPlainAmplemarket.cli()
