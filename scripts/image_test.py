"""`make image-test`: the source-amplemarket Docker image, built and run as Airbyte runs it.

Starts a Docker engine if none answers (and stops it after), builds the image from a base
image made on this machine (scripts/image_base.sh: no registry is reachable) with wheels
built here (no network in the build), then runs the image's `spec`, `check`, `discover`, a
`read` and a `read` from the state that one emitted, against the fake API on the host
network. Every line the image prints must be an Airbyte protocol message with no field the
protocol lacks. Prints each check; exits non-zero on the first that fails.

Run from the repository root with the project's virtualenv: `.venv/bin/python -m
scripts.image_test`.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import importlib.metadata
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import typing as t

import yaml
from airbyte_protocol.models import AirbyteMessage, AirbyteStateBlob
from pydantic import BaseModel

from tap_amplemarket.airbyte import spec_message
from tap_amplemarket.timefmt import isoformat_z, parse_timestamp

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

#: The fake API's package: `<FAKE_API>.server` runs as a process, `.process` starts it and
#: `.dataset` makes the data it serves.
FAKE_API = "tests.fake_api"

ROOT = pathlib.Path(__file__).resolve().parents[1]
VERSION = importlib.metadata.version("tap-amplemarket")
IMAGE = f"source-amplemarket:{VERSION}"
#: What Airbyte's registry is told of the image (its labels must agree).
METADATA = yaml.safe_load((ROOT / "metadata.yaml").read_text())["data"]
#: What "small" means for the image: the base's Debian and Python, and the package.
MAX_IMAGE_MB = 250
KEY = "sk-live-DO-NOT-PRINT-image-test"
CALLS, DAYS, END, LOOKBACK_DAYS = 300, 60, "2026-06-01T00:00:00Z", 3
CONFIG = {
    "api_key": KEY,
    "start_date": "2026-03-01T00:00:00Z",
    "end_date": "2026-06-02T00:00:00Z",
    "page_size": 40,
    "window_days": 10,
    "lookback_window_days": LOOKBACK_DAYS,
    "max_requests_per_minute": 100_000,
}
ENGINE_START_SECONDS = 120
RUN_TIMEOUT = 600


class CheckFailed(Exception):
    """What went wrong, in one line (details printed before it is raised)."""


def ok(what: str) -> None:
    print(f"ok: {what}", flush=True)


def expect(condition: object, what: str) -> None:
    if not condition:
        raise CheckFailed(what)


def run(command: Sequence[str], *, timeout: float = RUN_TIMEOUT, **kwargs: t.Any) -> str:
    """stdout of `command`; its output and a CheckFailed if it fails."""
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        msg = f"{' '.join(command[:3])} ... exited with {done.returncode}"
        raise CheckFailed(msg)
    return done.stdout


def engine_answers(docker: str) -> bool:
    try:
        done = subprocess.run([docker, "info"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@contextlib.contextmanager
def docker_engine(docker: str, log: pathlib.Path) -> Iterator[None]:
    """A Docker engine that answers: the one running, else dockerd started here, stopped after."""
    if engine_answers(docker):
        yield
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        msg = "no Docker engine answers and dockerd is not installed: apt-get install docker.io"
        raise CheckFailed(msg)
    if os.geteuid() != 0:
        raise CheckFailed("no Docker engine answers; starting one needs root: sudo make image-test")
    # vfs: works on any filesystem, overlay or not; no iptables or bridge: containers run on
    # the host network, which is all this test needs.
    command = [dockerd, "--storage-driver=vfs", "--iptables=false", "--bridge=none"]
    with log.open("wb") as output:
        engine = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    print(f"Started dockerd (pid {engine.pid}, log {log})", flush=True)
    try:
        deadline = time.monotonic() + ENGINE_START_SECONDS
        while not engine_answers(docker):
            if engine.poll() is not None or time.monotonic() > deadline:
                print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
                raise CheckFailed("dockerd did not start (its log is above)")
            time.sleep(1)
        yield
    finally:
        engine.terminate()
        try:
            engine.wait(timeout=60)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait()
        print(f"Stopped dockerd (pid {engine.pid})", flush=True)


def docker_client() -> str:
    """A client that builds with BuildKit (the legacy builder copies every layer on vfs).

    Docker's CLI from version 23 needs its buildx plugin for that; without it, an older client
    (Debian 12's docker.io, installed with dockerd) uses the engine's built-in BuildKit.
    """
    clients = [
        path
        for directory in os.environ.get("PATH", "").split(os.pathsep)
        if (path := shutil.which("docker", path=directory))
    ]
    for client in clients:
        if subprocess.run([client, "buildx", "version"], capture_output=True).returncode == 0:
            return client
    for client in clients:
        about = subprocess.run([client, "--version"], capture_output=True, text=True).stdout
        if (major := re.search(r"version (\d+)\.", about)) and int(major[1]) < 23:
            return client
    return clients[0] if clients else "docker"


def python_version(docker: str, image: str) -> str:
    """The Python an image built by scripts/image_base.sh has (its label says)."""
    (image_info,) = json.loads(run([docker, "image", "inspect", image]))
    version: str = (image_info["Config"].get("Labels") or {}).get("python.version", "")
    expect(version, f"{image} has no python.version label")
    return version


def build_wheels(docker: str, base: str) -> None:
    """Every package the image installs, as wheels for the base image's Python."""
    wanted = python_version(docker, base)
    python = sys.executable if f"{sys.version_info[0]}.{sys.version_info[1]}" == wanted else None
    python = python or shutil.which(f"python{wanted}")
    if python is None:
        msg = f"the base image has Python {wanted}: put python{wanted} on PATH to build wheels"
        raise CheckFailed(msg)
    started, wheelhouse = time.monotonic(), ROOT / "wheelhouse"
    shutil.rmtree(wheelhouse, ignore_errors=True)
    # hatchling: the Dockerfile builds the package itself from source, without network.
    run(
        [python, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
         "-c", "constraints.txt", "-w", str(wheelhouse), ".", "hatchling"],
        cwd=ROOT,
    )  # fmt: skip
    wheels = len(list(wheelhouse.glob("*.whl")))
    ok(f"{wheels} wheels for Python {wanted} in {time.monotonic() - started:.0f}s")


def build_image(docker: str) -> None:
    started = time.monotonic()
    base = run(["bash", str(ROOT / "scripts" / "image_base.sh")], timeout=1800).split()[-1]
    ok(f"base image {base} ({time.monotonic() - started:.0f}s; built once per engine)")
    build_wheels(docker, base)
    started = time.monotonic()
    run(
        [docker, "build", "--quiet", "--network", "none",
         "--build-arg", f"BASE_IMAGE={base}",
         "--build-arg", "PIP_OPTIONS=--no-index --find-links wheelhouse",
         "--tag", IMAGE, str(ROOT)],
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        timeout=1800,
    )  # fmt: skip
    shutil.rmtree(ROOT / "wheelhouse")  # in the image now; a plain `docker build .` needs none
    ok(f"built {IMAGE} in {time.monotonic() - started:.0f}s")


def check_image_conventions(docker: str) -> None:
    (image,) = json.loads(run([docker, "image", "inspect", IMAGE]))
    config = image["Config"]
    labels = config.get("Labels") or {}
    expect(
        labels.get("io.airbyte.name") == METADATA["dockerRepository"]
        and labels.get("io.airbyte.version") == VERSION == METADATA["dockerImageTag"],
        f"labels {labels} are not metadata.yaml's {METADATA['dockerRepository']} at {VERSION}",
    )
    ok(f"labels io.airbyte.name={METADATA['dockerRepository']}, io.airbyte.version={VERSION}")
    env = dict(entry.split("=", 1) for entry in config.get("Env") or [])
    entrypoint = env.get("AIRBYTE_ENTRYPOINT")
    expect(entrypoint == "source-amplemarket", f"AIRBYTE_ENTRYPOINT is {entrypoint!r}")
    # A number: Kubernetes' runAsNonRoot cannot tell whether a user name is root.
    user = (config.get("User") or "").split(":")[0]
    expect(user.isdigit() and int(user) != 0, f"USER is {user!r}, not a uid other than 0")
    ok(f"runs as uid {user}")
    size_mb = image["Size"] / 1e6
    expect(size_mb <= MAX_IMAGE_MB, f"the image is {size_mb:.0f} MB, over {MAX_IMAGE_MB} MB")
    ok(f"image size {size_mb:.0f} MB (at most {MAX_IMAGE_MB})")


def as_root(docker: str, script: str, *, network: bool = False) -> list[str]:
    """A shell command for `script` run in the image by root (to see every file)."""
    command = [docker, "run", "--rm", "--user", "0", "--entrypoint", "sh"]
    command += ["--network", "host"] if network else ["--network", "none"]
    return [*command, IMAGE, "-c", script]


#: Files the connector never uses that a scanner flags: pip, setuptools (as packages, scripts
#: or wheels) and any setuid/setgid file.
LEFTOVERS = (
    "find / -xdev \\( -name pip -o -name 'pip[0-9-]*' -o -name 'setuptools*'"
    " -o -type f -perm /6000 \\) -print"
)
#: Exits 75 if Debian's archive does not answer; else lists the upgradable packages.
UNREACHABLE = 75
PENDING_UPDATES = (
    f"apt-get update -qq --error-on=any >/dev/null 2>&1 || exit {UNREACHABLE};"
    " apt list --upgradable 2>/dev/null | sed '/^Listing/d'"
)


def check_image_contents(docker: str) -> None:
    leftovers = run(as_root(docker, LEFTOVERS)).split()
    expect(not leftovers, f"pip, setuptools or setuid files in the image: {leftovers}")
    ok("no pip, no setuptools, no setuid or setgid file")
    (image,) = json.loads(run([docker, "image", "inspect", IMAGE]))
    security = (image["Config"].get("Labels") or {}).get("debian.security")
    if security:  # a base made by scripts/image_base.sh says whether it has them
        ok(f"base image: Debian security updates {security}")
    command = as_root(docker, PENDING_UPDATES, network=True)
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if done.returncode == UNREACHABLE:
        print("pending updates: not checked, Debian's package archive did not answer", flush=True)
        return
    expect(done.returncode == 0, f"apt list --upgradable exited with {done.returncode}")
    pending = done.stdout.splitlines()
    # Listed, not failed: Debian may publish one after the week's base was built.
    for line in pending:
        print(f"pending update: {line}", flush=True)
    ok(f"{len(pending)} Debian packages with pending updates")


def assert_only_protocol_fields(model: object, where: str) -> None:
    """The models accept unknown fields; a misspelt one must fail here."""
    if isinstance(model, AirbyteStateBlob):
        return  # the source's own state: free-form by design
    if isinstance(model, BaseModel):
        extra = sorted(model.model_extra or {})
        expect(not extra, f"{where} has fields the Airbyte protocol does not define: {extra}")
        for name in type(model).model_fields:
            assert_only_protocol_fields(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for item in model:
            assert_only_protocol_fields(item, where)


class Container:
    """`docker run` of the image as Airbyte runs it: files mounted, host network."""

    def __init__(self, docker: str, files: pathlib.Path) -> None:
        self.docker, self.files = docker, files

    def write(self, name: str, document: object) -> str:
        path = self.files / name
        path.write_text(json.dumps(document))
        path.chmod(0o644)  # the image's user is not this one
        return f"/files/{name}"

    def run(self, *args: str, entrypoint: str | None = None) -> list[AirbyteMessage]:
        """The messages `args` print; each line validated, the key in none, exit code 0."""
        command = [self.docker, "run", "--rm", "--network", "host"]
        command += ["--volume", f"{self.files}:/files:ro"]
        command += ["--entrypoint", entrypoint] if entrypoint else []
        done = subprocess.run(
            [*command, IMAGE, *args], capture_output=True, text=True, timeout=RUN_TIMEOUT,
            check=False,
        )  # fmt: skip
        what = "spec" if args[0] == "-c" else args[0] + (" --state" if "--state" in args else "")
        if done.returncode != 0:
            print(done.stderr[-4000:], file=sys.stderr)
        expect(done.returncode == 0, f"{what} exited with {done.returncode}")
        expect(KEY not in done.stdout + done.stderr, f"{what} printed the API key")
        messages = []
        for number, line in enumerate(done.stdout.splitlines(), 1):
            try:
                message = AirbyteMessage.model_validate_json(line)
            except ValueError as exc:
                msg = f"{what}: line {number} is no Airbyte message ({exc}): {line[:200]}"
                raise CheckFailed(msg) from None
            expect(payload(message) is not None, f"{what}: line {number} lacks its {message.type}")
            assert_only_protocol_fields(message, f"{what}: line {number}")
            messages.append(message)
        errors = [m.trace.error for m in messages if m.trace and m.trace.error]
        expect(not errors, f"{what} ended with an error: {errors}")
        ok(f"{what}: {len(messages)} lines, each a valid Airbyte message, no key; exit 0")
        return messages


def payload(message: AirbyteMessage) -> t.Any:
    """The message's field its type names (CONNECTION_STATUS: connectionStatus)."""
    name = message.type.value.replace("_", "").lower()
    return next(
        getattr(message, field) for field in type(message).model_fields if field.lower() == name
    )


def of_type(messages: list[AirbyteMessage], kind: str) -> list[t.Any]:
    return [payload(m) for m in messages if m.type.value == kind]


def configured_catalog(catalog: t.Any) -> dict[str, t.Any]:
    """Every stream: incremental where the source offers it, as a user would configure it."""
    streams = []
    for stream in catalog.streams:
        incremental = any(mode.value == "incremental" for mode in stream.supported_sync_modes)
        streams.append(
            {
                "stream": json.loads(stream.model_dump_json(exclude_none=True)),
                "sync_mode": "incremental" if incremental else "full_refresh",
                "destination_sync_mode": "append_dedup" if incremental else "overwrite",
                "cursor_field": stream.default_cursor_field or [],
                "primary_key": stream.source_defined_primary_key or [],
            }
        )
    return {"streams": streams}


def last_states(messages: list[AirbyteMessage]) -> list[t.Any]:
    """The last STATE of each stream: where the next read resumes (what Airbyte keeps)."""
    last = {}
    for state in of_type(messages, "STATE"):
        last[state.stream.stream_descriptor.name] = json.loads(state.model_dump_json())
    return list(last.values())


def call_ids(messages: list[AirbyteMessage]) -> list[str]:
    return [r.data["id"] for r in of_type(messages, "RECORD") if r.stream == "calls"]


def check_commands(container: Container, url: str, calls: list[dict[str, t.Any]]) -> None:
    # As Airbyte on Kubernetes starts a connector; the exit code also says the user is not root.
    airbyte_way = '[ "$(id -u)" != 0 ] && $AIRBYTE_ENTRYPOINT spec'
    (spec,) = of_type(container.run("-c", airbyte_way, entrypoint="sh"), "SPEC")
    expect(
        spec.connectionSpecification == spec_message()["spec"]["connectionSpecification"],
        "the image's spec is not this checkout's",
    )
    ok("spec, through $AIRBYTE_ENTRYPOINT, by a user other than root: this checkout's settings")

    config = container.write("config.json", {**CONFIG, "api_url": url})
    (status,) = of_type(container.run("check", "--config", config), "CONNECTION_STATUS")
    expect(status.status.value == "SUCCEEDED", f"check: {status}")
    ok("check: SUCCEEDED against the fake API")
    (catalog,) = of_type(container.run("discover", "--config", config), "CATALOG")
    names = [stream.name for stream in catalog.streams]
    ok(f"discover: {len(names)} streams ({', '.join(names)})")
    configured = container.write("catalog.json", configured_catalog(catalog))

    first = container.run("read", "--config", config, "--catalog", configured)
    ids = call_ids(first)
    expect(len(ids) == len(set(ids)), "read delivered a call twice")
    expect(set(ids) == {call["id"] for call in calls}, f"read: {len(ids)} of {len(calls)} calls")
    read_streams = {record.stream for record in of_type(first, "RECORD")}
    expect(read_streams <= set(names), f"records of streams not configured: {read_streams}")
    ok(f"read: all {len(calls)} calls, once each; records of {len(read_streams)} streams")

    state = container.write("state.json", last_states(first))
    second = container.run("read", "--config", config, "--catalog", configured, "--state", state)
    # The bookmark is the end of the range read (end_date); the lookback's query a second lower.
    bookmark = parse_timestamp(CONFIG["end_date"])
    lookback_start = isoformat_z(bookmark - datetime.timedelta(days=LOOKBACK_DAYS, seconds=1))
    in_lookback = {call["id"] for call in calls if call["start_date"] >= lookback_start}
    ids = call_ids(second)
    expect(
        sorted(ids) == sorted(in_lookback),
        f"read from the state: {len(ids)} calls, not the {len(in_lookback)} of the lookback",
    )
    ok(f"read from its state: only the {len(ids)} calls of the {LOOKBACK_DAYS}-day lookback")


def check_against_fake_api(container: Container) -> None:
    process = importlib.import_module(f"{FAKE_API}.process")
    dataset = importlib.import_module(f"{FAKE_API}.dataset")
    args = ("--api-key", KEY, "--calls", str(CALLS), "--days", str(DAYS), "--end", END)
    data = dataset.sample_dataset(CALLS, days=DAYS, end=parse_timestamp(END))
    with process.fake_api_process(sys.executable, "-m", f"{FAKE_API}.server", *args) as url:
        check_commands(container, url, data.calls)


def tidy(docker: str) -> None:
    """The image this test replaced; on vfs, which copies every layer, build cache over 2 GB."""
    label = f"label=io.airbyte.name={METADATA['dockerRepository']}"
    run([docker, "image", "prune", "--force", "--filter", label])
    driver = run([docker, "info", "--format", "{{.Driver}}"]).strip()
    if driver == "vfs":
        run([docker, "builder", "prune", "--force", "--keep-storage", "2GB"])


def main() -> int:
    started = time.monotonic()
    docker = docker_client()
    with tempfile.TemporaryDirectory(prefix="image-test-") as work:
        files = pathlib.Path(work) / "files"
        files.mkdir()
        files.chmod(0o755)
        try:
            with docker_engine(docker, pathlib.Path(work) / "dockerd.log"):
                build_image(docker)
                check_image_conventions(docker)
                check_image_contents(docker)
                check_against_fake_api(Container(docker, files))
                tidy(docker)
        except (CheckFailed, subprocess.TimeoutExpired) as failure:
            print(f"image-test FAILED: {failure}", file=sys.stderr)
            return 1
    print(f"image-test passed in {time.monotonic() - started:.0f}s: {IMAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
