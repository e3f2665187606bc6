"""A real etcd per test module, on 127.0.0.1 with free ports and a temp data dir."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.etcd import EtcdProcess


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProcess]:
    process = EtcdProcess(tmp_path_factory.mktemp("etcd") / "data").start()
    try:
        yield process
    finally:
        process.stop()
