"""How entity values map onto SQLite columns, and back, without loss.

- Embeddings: little-endian float32 BLOBs, so a vector reads back bit for bit and a file
  moves between machines of any byte order.
- Timestamps: INTEGER microseconds since the Unix epoch, UTC. Exact (an ISO string or a
  REAL would round or depend on formatting), compact, and ordered like the instants.
- Metadata and index parameters: compact JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from domain.models import Matrix, Metadata, Vector

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
EMPTY_OBJECT = "{}"  # the stored form of empty metadata


def embedding_to_blob(embedding: Vector) -> bytes:
    return np.ascontiguousarray(embedding, dtype="<f4").tobytes()


def blob_to_embedding(blob: bytes) -> Vector:
    """A fresh, writable, contiguous native float32 array (``astype`` copies the buffer)."""
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def blobs_to_matrix(blobs: Sequence[bytes]) -> Matrix:
    """The embeddings of ``blobs`` (of equal length) as one native float32 matrix, decoded
    from the bytes of one join; read-only on a little-endian machine (a view of them)."""
    joined = b"".join(blobs)
    flat = np.frombuffer(joined, dtype="<f4").astype(np.float32, copy=False)
    return flat.reshape(len(blobs), -1)


def datetime_to_micros(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def micros_to_datetime(micros: int) -> datetime:
    """The timezone-aware UTC datetime ``datetime_to_micros`` was given."""
    return _EPOCH + timedelta(microseconds=micros)


def dump_json(value: Metadata | dict[str, Any]) -> str:
    if not value:
        return EMPTY_OBJECT
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def load_json(text: str) -> dict[str, Any]:
    # Most chunks carry no metadata; skipping the parser for them matters in a 1M-row scan.
    if text == EMPTY_OBJECT:
        return {}
    loaded: dict[str, Any] = json.loads(text)
    return loaded
