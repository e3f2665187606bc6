"""Three (or more) real StacksDB nodes joined through a real etcd, all on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.etcd import EtcdProcess
from tests.support.server import ServerProcess


@dataclass
class ClusterNodes:
    etcd: EtcdProcess
    root: Path
    lease_ttl: int = 2
    extra_args: list[str] = field(default_factory=list)
    nodes: dict[str, ServerProcess] = field(default_factory=dict)

    def add(self, node_id: str) -> ServerProcess:
        (self.root / node_id).mkdir(parents=True, exist_ok=True)
        node = ServerProcess(self.root / node_id / "data")
        node.args = [
            "--cluster",
            self.etcd.cluster_url,
            "--node-id",
            node_id,
            "--advertise-url",
            node.url,
            "--lease-ttl",
            str(self.lease_ttl),
            *self.extra_args,
        ]
        self.nodes[node_id] = node
        return node.start()

    def status(self, node: ServerProcess) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{node.url}/v1/cluster", timeout=5).json()
        return body

    def alive(self) -> list[ServerProcess]:
        return [n for n in self.nodes.values() if n.process and n.process.poll() is None]

    def leader(
        self,
        timeout: float = 15.0,
        among: list[ServerProcess] | None = None,
        other_than: str | None = None,
    ) -> str:
        """The node id every live node (or ``among``) agrees leads, once they agree (on a
        node other than ``other_than``, when given)."""
        deadline = time.monotonic() + timeout
        last: set[str | None] = set()
        while time.monotonic() < deadline:
            views: set[str | None] = set()
            for node in among or self.alive():
                try:
                    leader = self.status(node)["leader"]
                except (httpx.HTTPError, ValueError):
                    views.add(None)
                    continue
                views.add(None if leader is None else leader["node_id"])
            last = views
            if len(views) == 1 and None not in views and other_than not in views:
                (leader_id,) = views
                assert leader_id is not None
                return leader_id
            time.sleep(0.05)
        raise TimeoutError(f"no agreed leader after {timeout}s; views {last}")

    def followers(self, leader_id: str) -> list[ServerProcess]:
        return [n for k, n in self.nodes.items() if k != leader_id and n in self.alive()]

    def stop_all(self) -> None:
        for node in self.nodes.values():
            node.kill()


def eventually(check: Callable[[], bool], timeout: float = 10.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()
