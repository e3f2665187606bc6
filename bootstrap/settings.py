"""Configuration: every setting is a ``stacksdb serve`` flag and a STACKSDB_* variable.

The limits and planner thresholds are ``domain.limits.Limits``'s own fields, inherited with
their defaults and bounds (``STACKSDB_MAX_K``, ``STACKSDB_MAX_PAGE_SIZE``, ...), so each is
declared once; ``limits()`` hands them to the services as one ``Limits`` value.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.limits import Limits


class Settings(BaseSettings, Limits):
    # Not frozen like ``Limits``: the settings stay an ordinary, mutable configuration object.
    model_config = SettingsConfigDict(env_prefix="STACKSDB_", extra="ignore", frozen=False)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path("./data")
    storage: str = Field(default="sqlite", pattern="^(sqlite|memory)$")
    api_key: str | None = None
    log_level: str = "info"
    # One BLAS thread per matrix product: see bootstrap/blas.py for why.
    blas_threads: int = Field(default=1, ge=1)
    # Searches in flight at once (the rest wait on the event loop): see routes/search.py.
    search_threads: int = Field(default_factory=lambda: (os.cpu_count() or 1) + 1, ge=1)
    # Seconds between saves of changed approximate indexes (0: only after builds and at stop).
    index_snapshot_interval: float = Field(default=300.0, ge=0)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Embedders (bootstrap/embedders.py): threads of the bundled MiniLM (the cores embedding
    # may take; searches keep the rest), and for remote providers the seconds one request
    # may take, the retries after a 429, 5xx, timeout or lost connection, and the longest
    # wait between two attempts (a longer Retry-After is cut to it).
    embed_workers: int = Field(default=1, ge=1)
    embedder_timeout: float = Field(default=30.0, gt=0)
    embedder_retries: int = Field(default=3, ge=0, le=10)
    embedder_max_wait: float = Field(default=10.0, ge=0)
    # Replication (see bootstrap/cluster.py). Without ``cluster`` the node is a standalone leader.
    cluster: str | None = Field(default=None, pattern=r"^(etcd|http)://[^/]+$")
    node_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=128)
    advertise_url: str | None = None
    min_replicas: int = Field(default=0, ge=0)
    lease_ttl: int = Field(default=5, ge=2, le=60)
    replica_timeout: float = Field(default=10.0, gt=0)
    max_read_wait: float = Field(default=5.0, ge=0)
    log_retention: int = Field(default=1_000, ge=0)

    def limits(self) -> Limits:
        """The limits and thresholds as set, without the rest of the settings."""
        return Limits.model_validate({name: getattr(self, name) for name in Limits.model_fields})

    @property
    def forward_timeout(self) -> float:
        """How long a follower waits for the leader to answer a forwarded write: the
        leader may embed the write's texts (every attempt of a remote embedder, with its
        waits) and then wait for its followers, and a little more for the store."""
        embedding = (self.embedder_retries + 1) * self.embedder_timeout
        waits = self.embedder_retries * self.embedder_max_wait
        return embedding + waits + self.replica_timeout + 30.0

    @property
    def node_url(self) -> str:
        """Where other nodes reach this one."""
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host
        return f"http://{host}:{self.port}"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "stacksdb.sqlite3"
