"""Each setting's bounds are declared once, in the schema, and enforced from there."""

from __future__ import annotations

import pytest
from singer_sdk.exceptions import ConfigValidationError

from tap_amplemarket.airbyte import SDK_SETTINGS, connection_specification
from tap_amplemarket.settings import BOUND_WORDS
from tap_amplemarket.tap import TapAmplemarket

# The SDK adds its own settings to the class's schema once a tap is made: not the tap's.
OWN = {
    name: prop
    for name, prop in TapAmplemarket.config_jsonschema["properties"].items()
    if name not in SDK_SETTINGS
}
NUMBERS = {name: prop for name, prop in OWN.items() if {"integer", "number"} & set(prop["type"])}


def test_every_number_setting_declares_its_bounds():
    for name, prop in NUMBERS.items():
        assert "maximum" in prop, name
        assert "minimum" in prop or "exclusiveMinimum" in prop, name
        low = prop.get("minimum", prop.get("exclusiveMinimum", 0) + 1)
        assert low <= prop["default"] <= prop["maximum"], f"{name}'s default is in its bounds"


def test_the_airbyte_spec_shows_the_same_bounds():
    spec = connection_specification()["properties"]
    for name, prop in NUMBERS.items():
        assert {k: spec[name].get(k) for k in BOUND_WORDS} == {k: prop.get(k) for k in BOUND_WORDS}


def beyond(prop: dict, bound: str) -> int:
    limit = prop[bound]
    return {"minimum": limit - 1, "exclusiveMinimum": limit, "maximum": limit + 1}[bound]


@pytest.mark.parametrize(
    ("name", "bound"),
    [(name, bound) for name, prop in NUMBERS.items() for bound in BOUND_WORDS if bound in prop],
)
def test_a_value_beyond_a_bound_is_one_line_naming_the_setting(name, bound):
    value = beyond(NUMBERS[name], bound)
    with pytest.raises(ConfigValidationError) as raised:
        TapAmplemarket(config={"api_key": "a-test-key", name: value})

    (error,) = raised.value.errors
    assert error.startswith(f"{name} must "), error
    assert f"(got {value})" in error
    assert "\n" not in error
    TapAmplemarket(config={"api_key": "a-test-key", name: NUMBERS[name]["default"]})
