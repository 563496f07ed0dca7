"""The `tap-amplemarket` command line: errors a person can fix end in one line, not a traceback."""

from __future__ import annotations

import itertools
import sys

from singer_sdk.exceptions import ConfigValidationError

from tap_amplemarket import probe, sdk_logs
from tap_amplemarket.errors import UnreadableFileError, failure_message, read_json_file
from tap_amplemarket.tap import TapAmplemarket
from tap_amplemarket.writer import Interrupted, checked_output


def flag_values(argv: list[str], flag: str) -> list[str]:
    """Every value given to `flag` in `argv` (`--flag value` or `--flag=value`)."""
    values = [value for name, value in itertools.pairwise(argv) if name == flag]
    return values + [arg.removeprefix(f"{flag}=") for arg in argv if arg.startswith(f"{flag}=")]


#: The files the command line reads, and what to do when one cannot be used.
FILE_ARGUMENTS = {
    "--config": ("config", "pass a JSON object of settings (see --about)"),
    "--state": ("state", "pass a state a previous run emitted, or none for a full sync"),
}


def file_argument_error(argv: list[str]) -> str | None:
    """Why a `--config` or `--state` file in `argv` cannot be read as a JSON object, if so.

    Checked before the SDK reads them: the SDK would end in a traceback.
    """
    for flag, (what, fix) in FILE_ARGUMENTS.items():
        for path in flag_values(argv, flag):
            if flag == "--config" and path == "ENV":  # settings from the environment
                continue
            try:
                value = read_json_file(path, what, fix)
            except UnreadableFileError as exc:
                return str(exc)
            if not isinstance(value, dict):
                kind = type(value).__name__
                return f"The {what} file {path} holds {kind}, not a JSON object: {fix}"
    return None


def run_probe(argv: list[str]) -> int:
    """`--probe [--probe-json FILE]`: the probe (probe.py) with the config given; its exit code."""
    paths = flag_values(argv, "--config")
    try:
        tap = TapAmplemarket(
            config=[path for path in paths if path != "ENV"],
            parse_env_config="ENV" in paths,
            validate_config=True,
        )
    except ConfigValidationError as exc:
        for error in exc.errors or [str(exc)]:
            TapAmplemarket.logger.error("%s", error)
        return 1
    json_path = next(iter(flag_values(argv, "--probe-json")), None)
    return probe.main(lambda: tap, json_path)


def main() -> None:
    """Console entry point: errors a person can fix end in one line, not a traceback."""
    sdk_logs.quiet(TapAmplemarket.logger)  # where the CLI logs config errors
    if message := file_argument_error(sys.argv[1:]):
        TapAmplemarket.logger.error("%s", message)
        sys.exit(1)
    if "--probe" in sys.argv[1:] or flag_values(sys.argv[1:], "--probe-json"):
        try:
            sys.exit(run_probe(sys.argv[1:]))
        except Exception as exc:
            message = failure_message(exc)
            if message is None:
                raise
            TapAmplemarket.logger.error("%s", message)
            sys.exit(1)
    try:
        with checked_output():
            TapAmplemarket.cli()
    except Interrupted as interrupted:
        TapAmplemarket.logger.error(
            "Interrupted by %s: the next run resumes from the last STATE emitted",
            interrupted.signal_name,
        )
        sys.exit(interrupted.exit_code)
    except Exception as exc:
        message = failure_message(exc)
        if message is None:
            TapAmplemarket.logger.critical("Unexpected error", exc_info=True)
        else:
            TapAmplemarket.logger.error("%s", message)
        sys.exit(1)


if __name__ == "__main__":
    main()
