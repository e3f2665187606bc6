"""The Docker image without Docker: the Dockerfile lints clean, docker-compose.yml wires it
up, and the exact command and HEALTHCHECK the image runs behave, run here from the venv."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
BIN = Path(sys.executable).parent
IMAGE_VENV_BIN = "/opt/venv/bin"


@dataclass
class ImageSpec:
    """What the final stage of the Dockerfile says the container runs."""

    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    healthcheck_options: dict[str, str] = field(default_factory=dict)
    exposed: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    user: str = "root"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    pairs = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def exec_form(arguments: str) -> list[str]:
    """The JSON (exec) form of CMD/ENTRYPOINT; the shell form would need a shell in PID 1."""
    parsed = json.loads(arguments)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed)
    return parsed


def parse_image(text: str) -> ImageSpec:
    pairs = instructions(text)
    last_from = max(i for i, (keyword, _) in enumerate(pairs) if keyword == "FROM")
    spec = ImageSpec()
    for keyword, arguments in pairs[last_from + 1 :]:
        if keyword == "ENV":
            for assignment in shlex.split(arguments):
                key, _, value = assignment.partition("=")
                spec.env[key] = re.sub(
                    r"\$\{?(\w+)\}?", lambda m: spec.env.get(m.group(1), f"${m.group(1)}"), value
                )
        elif keyword == "ENTRYPOINT":
            spec.entrypoint = exec_form(arguments)
        elif keyword == "CMD":
            spec.cmd = exec_form(arguments)
        elif keyword == "HEALTHCHECK":
            options, _, command = arguments.partition(" CMD ")
            spec.healthcheck = exec_form(command)
            spec.healthcheck_options = dict(
                option.removeprefix("--").split("=", 1) for option in options.split()
            )
        elif keyword == "EXPOSE":
            spec.exposed.extend(arguments.split())
        elif keyword == "VOLUME":
            spec.volumes.extend(exec_form(arguments))
        elif keyword == "USER":
            spec.user = arguments
        elif keyword == "RUN":
            spec.runs.append(arguments)
    return spec


@pytest.fixture(scope="module")
def image() -> ImageSpec:
    return parse_image(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def compose_service() -> dict[str, Any]:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert len(services) == 1
    (service,) = services.values()
    assert isinstance(service, dict)
    return service


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", duration)
    assert match, f"unexpected duration {duration!r}"
    value, unit = float(match.group(1)), match.group(2)
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]


def local_command(command: list[str]) -> list[str]:
    """The image's command with its executables found in this venv instead of /opt/venv."""
    program, *arguments = command
    if program == "python":
        return [sys.executable, *arguments]
    local = BIN / program
    assert local.exists(), f"{program} is not installed in the venv"
    return [str(local), *arguments]


def container_env(image: ImageSpec, **overrides: str) -> dict[str, str]:
    """The image's environment, with PATH pointing at this venv and ``overrides`` applied."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKSDB_")}
    env.update(image.env)
    env["PATH"] = (
        image.env["PATH"]
        .replace(IMAGE_VENV_BIN, str(BIN))
        .replace("$PATH", os.environ.get("PATH", ""))
    )
    env.update(overrides)
    return env


def healthcheck(image: ImageSpec, env: dict[str, str], cwd: Path) -> int:
    timeout = seconds(image.healthcheck_options["timeout"])
    done = subprocess.run(local_command(image.healthcheck), env=env, cwd=cwd, timeout=timeout)
    return done.returncode


@contextmanager
def running_image_command(
    image: ImageSpec, tmp_path: Path, **extra_env: str
) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str], Path]]:
    """ENTRYPOINT + CMD as the container runs them, on 127.0.0.1 and a temporary /data."""
    data = tmp_path / "data"
    data.mkdir()
    env = container_env(
        image,
        STACKSDB_DATA_DIR=str(data),
        STACKSDB_PORT=str(free_port()),
        STACKSDB_HOST="127.0.0.1",
        **extra_env,
    )
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        local_command([*image.entrypoint, *image.cmd]),
        env=env,
        cwd=data,  # WORKDIR /data
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process, env, data
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()


def wait_healthy(image: ImageSpec, env: dict[str, str], cwd: Path, process: Any) -> None:
    deadline = time.monotonic() + seconds(image.healthcheck_options["start-period"])
    while healthcheck(image, env, cwd) != 0:
        assert process.poll() is None, "the server exited during start-up"
        assert time.monotonic() < deadline, "never healthy within the start period"
        time.sleep(0.1)


def test_hadolint_passes_on_the_dockerfile() -> None:
    done = subprocess.run(
        [str(BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_the_image_runs_stacksdb_serve_as_a_non_root_user_on_port_8000_with_data_in_a_volume(
    image: ImageSpec,
) -> None:
    assert [*image.entrypoint, *image.cmd] == ["stacksdb", "serve"]
    assert image.env["STACKSDB_HOST"] == "0.0.0.0"
    assert image.env["STACKSDB_PORT"] == "8000" and "8000" in image.exposed
    assert image.env["STACKSDB_DATA_DIR"] == "/data" and "/data" in image.volumes
    assert image.env["PATH"].startswith(IMAGE_VENV_BIN + ":")
    assert image.user.split(":")[0] not in {"root", "0"}
    assert image.healthcheck == ["python", "-m", "bootstrap.healthcheck"]


def test_compose_builds_the_dockerfile_with_a_data_volume_and_port_8000(
    compose_service: dict[str, Any],
) -> None:
    build = compose_service["build"]
    context = build if isinstance(build, str) else build["context"]
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (COMPOSE.parent / context / dockerfile).resolve() == DOCKERFILE
    assert any(str(v).split(":")[1] == "/data" for v in compose_service["volumes"])
    assert any(str(p).split(":")[-1] == "8000" for p in compose_service["ports"])
    assert compose_service.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert seconds(compose_service["stop_grace_period"]) >= 10


def test_the_image_command_serves_passes_its_healthcheck_and_stops_cleanly_on_sigterm(
    image: ImageSpec, compose_service: dict[str, Any], tmp_path: Path
) -> None:
    with running_image_command(image, tmp_path) as (process, env, data):
        wait_healthy(image, env, data, process)
        url = f"http://127.0.0.1:{env['STACKSDB_PORT']}"
        created = httpx.post(f"{url}/v1/libraries", json={"name": "in-docker", "dimension": 3})
        assert created.status_code == 201, created.text
        assert (data / "stacksdb.sqlite3").exists()

        process.send_signal(signal.SIGTERM)
        grace = seconds(compose_service["stop_grace_period"])
        assert process.wait(grace) == 0
        assert healthcheck(image, env, data) == 1


def test_the_healthcheck_sends_the_api_key_when_one_is_set(
    image: ImageSpec, tmp_path: Path
) -> None:
    with running_image_command(image, tmp_path, STACKSDB_API_KEY="s3cret") as (
        process,
        env,
        data,
    ):
        wait_healthy(image, env, data, process)
        url = f"http://127.0.0.1:{env['STACKSDB_PORT']}"
        assert httpx.get(f"{url}/readyz").status_code == 401
        wrong_key = {**env, "STACKSDB_API_KEY": "wrong"}
        assert healthcheck(image, wrong_key, data) == 1


_CACHE_MISSES = """
from adapters.embedders import bert_kernels
from bootstrap.warmup import warm_up
from domain.index.hnsw import graph, insertion, repair

warm_up()
kernels = [
    value
    for module in (graph, insertion, repair, bert_kernels)
    for value in vars(module).values()
    if hasattr(value, "stats")
]
print(sum(len(kernel.stats.cache_misses) for kernel in kernels), len(kernels))
"""


def test_the_image_build_compiles_the_index_kernels_so_a_container_compiles_nothing(
    image: ImageSpec, tmp_path: Path
) -> None:
    (warm_up,) = [run for run in image.runs if "bootstrap.warmup" in run]
    command = shlex.split(warm_up.split("&&")[0])
    assert image.env["NUMBA_CACHE_DIR"].startswith("/opt/")
    env = container_env(image, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    subprocess.run(local_command(command), env=env, cwd=tmp_path, check=True, timeout=600)
    assert list((tmp_path / "numba-cache").rglob("*.nbi")), "no compiled kernel was cached"
    # A new process (the container's server) loads every kernel from that cache.
    done = subprocess.run(
        [sys.executable, "-c", _CACHE_MISSES],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    misses, kernels = (int(word) for word in done.stdout.split())
    assert kernels >= 5 and misses == 0, done.stdout
