"""What the command line says about settings and connection tests, as a person reads it."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_cli


def log_lines(stderr: str, level: str) -> list[str]:
    return [line for line in stderr.splitlines() if re.search(rf"\|\s*{level}\s*\|", line)]


def test_an_unknown_setting_is_warned_about_and_the_run_goes_on(api, config, tmp_path):
    result = run_cli([], {**config, "colour": "blue"}, tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    assert len([w for w in log_lines(result.stderr, "WARNING") if "colour" in w]) == 1
    assert result.records("calls")


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("start_dat", "start_date"),  # a character missing
        ("start_datee", "start_date"),  # one added
        ("strat_date", "start_date"),  # two swapped
        ("page_sise", "page_size"),  # one wrong
        ("Page_Size", "page_size"),  # the case
        ("flatening_enabled", "flattening_enabled"),  # an SDK setting's
    ],
)
@pytest.mark.parametrize("args", [[], ["--test"]], ids=["sync", "test"])
def test_a_setting_one_typo_away_stops_the_run_naming_both(
    api, config, tmp_path, typo, meant, args
):
    settings = {key: value for key, value in config.items() if key != meant}
    result = run_cli(args, {**settings, typo: config.get(meant, 1)}, tmp_path)

    assert result.returncode == 1
    (error,) = log_lines(result.stderr, "ERROR")
    assert typo in error
    assert meant in error
    assert "Traceback" not in result.stderr
    assert api.requests == [], "stopped before any request"


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

    assert result.returncode == 1
    (error,) = log_lines(result.stderr, "ERROR")  # one line: the hint is in it
    assert "api_kye" in error
    assert "api_key" in error.replace("api_kye", "")
    assert api.requests == []


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
