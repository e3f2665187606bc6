"""Configuration: every setting is a ``stacksdb serve`` flag and a STACKSDB_* variable."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.limits import Limits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STACKSDB_", extra="ignore")

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
    max_k: int = Field(default=1_000, ge=1)
    max_batch: int = Field(default=10_000, ge=1)
    max_dimension: int = Field(default=4_096, ge=1)
    max_text_length: int = Field(default=100_000, ge=1)
    max_metadata_bytes: int = Field(default=16_384, ge=64)
    max_filter_depth: int = Field(default=10, ge=1)
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
        return Limits(
            max_k=self.max_k,
            max_batch=self.max_batch,
            max_dimension=self.max_dimension,
            max_text_length=self.max_text_length,
            max_metadata_bytes=self.max_metadata_bytes,
            max_filter_depth=self.max_filter_depth,
        )

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
