"""Fixtures for the SDK tests: one real `stacksdb serve` node for the session, and clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from stacksdb_client import Library, StacksDB

from tests.support.server import ServerProcess, running_server

DIM = 8


def vec(seed: int, dim: int = DIM) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).standard_normal(dim)]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("sdk-node") / "data"
    with running_server(data_dir) as node:
        yield node


@pytest.fixture
def db(server: ServerProcess) -> Iterator[StacksDB]:
    with StacksDB(server.url, timeout=30) as client:
        yield client


@pytest.fixture
def library(db: StacksDB) -> Iterator[Library]:
    lib = db.create_library("sdk-test", dimension=DIM, metric="cosine")
    yield lib
    lib.delete()
