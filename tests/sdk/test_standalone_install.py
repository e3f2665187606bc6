"""`pip install ./sdk` into a fresh virtualenv gives a working client and nothing of the server."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.server import ServerProcess

SDK = Path(__file__).resolve().parent.parent.parent / "sdk"

SMOKE = """
import importlib.util, sys
from stacksdb_client import StacksDB, F

for server_module in ("bootstrap", "domain", "application", "adapters", "fastapi", "numpy"):
    assert importlib.util.find_spec(server_module) is None, server_module

with StacksDB(sys.argv[1]) as db:
    lib = db.create_library("standalone", 2)
    lib.add_chunks([{"document_id": "d", "text": "hi", "embedding": [1.0, 0.0]}])
    hit = lib.search([1.0, 0.1], k=1, include=["text"], filter=F("lang").exists(False)).results[0]
    lib.delete()
print(hit.text)
"""


@pytest.mark.slow
@pytest.mark.e2e
def test_pip_install_sdk_in_a_fresh_venv_talks_to_a_server(
    tmp_path: Path, server: ServerProcess
) -> None:
    source = tmp_path / "sdk"
    shutil.copytree(SDK, source, ignore=shutil.ignore_patterns("*.egg-info", "build", "dist"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"

    started = time.monotonic()
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", source],
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(f"pip install ./sdk took {time.monotonic() - started:.1f} s")
    assert install.returncode == 0, install.stderr

    smoke = subprocess.run(
        [str(python), "-c", SMOKE, server.url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert smoke.returncode == 0, smoke.stderr
    assert smoke.stdout.strip() == "hi"
    installed = (venv / "lib").glob("python*/site-packages/stacksdb_client/py.typed")
    assert list(installed), "py.typed must ship with the package"
