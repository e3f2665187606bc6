"""The package ships `py.typed`: `mypy --strict` checks code that uses it against its types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent

MISUSE = """
from stacksdb_client import StacksDB

db = StacksDB("http://127.0.0.1:8000")
lib = db.get_library("x")
lib.search("not a vector", k="ten")
lib.add_chunks([{"document_id": "d"}], batch_size=None)
name: int = lib.name
"""


@pytest.mark.slow
def test_mypy_strict_accepts_typed_usage_and_rejects_misuse(tmp_path: Path) -> None:
    misuse = tmp_path / "misuse.py"
    misuse.write_text(MISUSE)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(HERE / "typed_usage.py"),
            str(misuse),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if "typed_usage.py" in e], result.stdout
    flagged = {int(e.split(":")[1]) for e in errors if "misuse.py" in e}
    assert flagged == {6, 7, 8}, result.stdout
