"""What the command line says about settings and connection tests, as a person reads it."""

from __future__ import annotations

import re

from tests.conftest import run_cli


def log_lines(stderr: str, level: str) -> list[str]:
    return [line for line in stderr.splitlines() if re.search(rf"\|\s*{level}\s*\|", line)]


def test_an_unknown_setting_is_named_with_the_closest_known_one(api, config, tmp_path):
    typo = {key: value for key, value in config.items() if key != "start_date"}
    typo |= {"start_dat": config["start_date"], "colour": "blue"}
    result = run_cli(["--discover"], typo, tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    warnings = log_lines(result.stderr, "WARNING")
    assert any("'start_dat' is ignored: did you mean start_date?" in w for w in warnings)
    assert any("'colour' is ignored" in w and "did you mean" not in w for w in warnings)


def test_builtin_sdk_settings_are_not_unknown(api, config, tmp_path):
    sdk_settings = {
        "stream_maps": {},
        "flattening_enabled": False,
        "flattening_max_depth": 1,
        "batch_config": None,
    }
    result = run_cli(["--discover"], {**config, **sdk_settings}, tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    assert "Unknown setting" not in result.stderr


def test_a_misspelt_api_key_fails_naming_the_setting_it_meant(api, config, tmp_path):
    misspelt = {key: value for key, value in config.items() if key != "api_key"}
    misspelt["api_kye"] = config["api_key"]
    result = run_cli([], misspelt, tmp_path)

    assert result.returncode != 0
    assert "'api_key' is a required property" in result.stderr
    assert "'api_kye' is ignored: did you mean api_key?" in result.stderr


def test_a_passing_connection_test_logs_no_error(api, config, tmp_path):
    result = run_cli(["--test"], config, tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.records("users")) == 1
    assert log_lines(result.stderr, "ERROR") == []


def test_a_failing_connection_test_ends_in_the_one_clear_line(api, config, tmp_path):
    result = run_cli(["--test"], {**config, "api_key": "wrong"}, tmp_path)

    assert result.returncode != 0
    errors = log_lines(result.stderr, "ERROR")
    assert errors[-1].endswith("Amplemarket rejected the API key (401): check api_key")
    assert "Traceback" not in result.stderr
