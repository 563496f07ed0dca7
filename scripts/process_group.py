"""Run a command in a process group of its own, so nothing it started outlives it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import typing as t


def run_in_group(
    command: list[str], *, timeout: float | None = None, **popen: t.Any
) -> subprocess.CompletedProcess[str]:
    """subprocess.run, but a timeout, an interrupt or the end of the run kills the whole group.

    `meltano install` runs pip or uv, which may run compilers: killing only meltano would leave
    those running as orphans.
    """
    with subprocess.Popen(command, start_new_session=True, text=True, **popen) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
