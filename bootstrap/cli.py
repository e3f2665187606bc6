"""The ``stacksdb`` command."""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Sequence
from types import FrameType
from typing import Any

import uvicorn

from adapters.http.protocol import ProblemHttpToolsProtocol
from bootstrap.app import create_app
from bootstrap.blas import limit_blas_threads
from bootstrap.malloc import fix_mmap_threshold
from bootstrap.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stacksdb", description="StacksDB vector database")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start a node (flags override STACKSDB_* variables)")
    serve.add_argument("--host", help="address to listen on (STACKSDB_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (STACKSDB_PORT, default 8000)")
    serve.add_argument(
        "--data-dir", help="where the store lives (STACKSDB_DATA_DIR, default ./data)"
    )
    serve.add_argument("--storage", choices=["sqlite", "memory"], help="STACKSDB_STORAGE")
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (STACKSDB_API_KEY)")
    serve.add_argument("--log-level", help="STACKSDB_LOG_LEVEL, default info")
    serve.add_argument(
        "--blas-threads", type=int, help="threads per BLAS product (STACKSDB_BLAS_THREADS, 1)"
    )
    serve.add_argument(
        "--search-threads",
        type=int,
        help="searches in flight at once (STACKSDB_SEARCH_THREADS, default cores + 1)",
    )
    cluster = serve.add_argument_group("cluster (leader-follower replication through etcd)")
    cluster.add_argument("--cluster", help="etcd://host:port to join a cluster (STACKSDB_CLUSTER)")
    cluster.add_argument("--node-id", help="this node's name (STACKSDB_NODE_ID, default hostname)")
    cluster.add_argument(
        "--advertise-url", help="URL other nodes reach this one at (STACKSDB_ADVERTISE_URL)"
    )
    cluster.add_argument(
        "--min-replicas",
        type=int,
        help="followers that must hold a write before it is acknowledged (STACKSDB_MIN_REPLICAS)",
    )
    cluster.add_argument("--lease-ttl", type=int, help="leader lease in s (STACKSDB_LEASE_TTL)")
    cluster.add_argument(
        "--log-retention",
        type=int,
        help="log entries kept behind the slowest follower (STACKSDB_LOG_RETENTION)",
    )
    return parser


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {
        key: value for key, value in vars(args).items() if key != "command" and value is not None
    }
    settings = Settings(**overrides)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with the handler
    # that was in place before it started; with the default one the process would die "by
    # SIGTERM" (exit 143 in Docker) after a clean shutdown. A stop is not a failure: exit 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    limit_blas_threads(settings.blas_threads)
    fix_mmap_threshold()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
        # uvloop and httptools by name, not "auto": a missing package fails the start instead
        # of falling back, unnoticed, to asyncio's loop and the pure-Python h11 parser, which
        # cost more server CPU per request (README, "The request path").
        loop="uvloop",
        http=ProblemHttpToolsProtocol,
        # No WebSocket routes: an Upgrade request is served as plain HTTP, so it gets the
        # API's answers (problem+json) instead of the websockets library's text/plain 400.
        ws="none",
    )


if __name__ == "__main__":
    main()
