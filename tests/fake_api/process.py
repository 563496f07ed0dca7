"""The fake API in a process of its own (benchmarks; PyAirbyte's virtualenv, which lacks the
tap's dependencies). Standard library only."""

from __future__ import annotations

import contextlib
import os
import subprocess
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def fake_api_process(*command: str | os.PathLike[str], **popen: t.Any) -> Iterator[str]:
    """Run `command` (`python -m tests.fake_api` and its options, from the repository's
    root) on a free port until the block ends; yields the fake's URL."""
    with subprocess.Popen(
        [*(os.fspath(part) for part in command), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        **popen,
    ) as server:
        try:
            banner = server.stdout.readline() if server.stdout else ""
            if " on " not in banner:
                msg = f"{command} did not start (it printed {banner!r})"
                raise RuntimeError(msg)
            yield banner.split(" on ")[1].split()[0]
        finally:
            server.terminate()
