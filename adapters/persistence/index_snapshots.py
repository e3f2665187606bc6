"""Index snapshots as files: ``<data_dir>/indexes/<library_id>.npz``.

Implements ``domain.ports.IndexSnapshotStore``. One uncompressed .npz per library holds the
index's ``to_state`` arrays (``s_*``), the chunk id behind every label, the store position
it reflects (``revision``, ``library_created_at``) and a SHA-256 over all of them.

Writes are atomic the way SQLite's rollback journal is: a temporary file in the same folder,
fsync'd, renamed over the old one (rename is atomic within a file system), and the folder
fsync'd so the rename itself survives a power loss. A crash at any point leaves either the
previous snapshot or the new one, never a mix; a torn or bit-flipped file fails the checksum
(or the zip's own CRC) and ``load`` says so with ``ValueError``.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from domain.index.index_snapshot import IndexSnapshot

FORMAT = 1
_STATE_PREFIX = "s_"
_SUFFIX = ".npz"
# Library ids are client-chosen strings: anything outside this set is hex-escaped, so a
# name can never leave the folder or collide with another id.
_SAFE = re.compile(r"[A-Za-z0-9_-]")


class NpzIndexSnapshots:
    """``IndexSnapshotStore`` over a folder of .npz files."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    @property
    def directory(self) -> Path:
        return self._directory

    def path(self, library_id: str) -> Path:
        return self._directory / f"{_file_stem(library_id)}{_SUFFIX}"

    def save(self, library_id: str, snapshot: IndexSnapshot) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        arrays = _to_arrays(snapshot)
        arrays["checksum"] = np.array(_checksum(arrays))
        final = self.path(library_id)
        temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        try:
            with temporary.open("wb") as handle:
                np.savez(handle, allow_pickle=False, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_directory(self._directory)

    def load(self, library_id: str) -> IndexSnapshot | None:
        path = self.path(library_id)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except Exception as exc:  # a damaged zip or .npy header fails in many ways
            raise ValueError(f"unreadable index snapshot {path.name}: {exc!r}") from exc
        stored = arrays.pop("checksum", None)
        if stored is None or str(stored) != _checksum(arrays):
            raise ValueError(f"index snapshot {path.name} fails its checksum")
        try:
            return _from_arrays(arrays)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"malformed index snapshot {path.name}: {exc}") from exc

    def delete(self, library_id: str) -> None:
        self.path(library_id).unlink(missing_ok=True)

    def library_ids(self) -> list[str]:
        if not self._directory.is_dir():
            return []
        return [
            _library_id(path.name[: -len(_SUFFIX)])
            for path in self._directory.iterdir()
            if path.name.endswith(_SUFFIX) and not path.name.startswith(".")
        ]


def _to_arrays(snapshot: IndexSnapshot) -> dict[str, NDArray[Any]]:
    present = np.array([c is not None for c in snapshot.chunk_ids], dtype=np.bool_)
    ids = np.array([c or "" for c in snapshot.chunk_ids], dtype=np.str_)
    arrays: dict[str, NDArray[Any]] = {
        "format": np.array(FORMAT, dtype=np.int64),
        "revision": np.array(snapshot.revision, dtype=np.int64),
        "library_created_at": np.array(snapshot.library_created_at.isoformat()),
        "chunk_ids": ids.reshape(-1),
        "chunk_present": present,
    }
    for name, array in snapshot.state.items():
        arrays[_STATE_PREFIX + name] = np.asarray(array)
    return arrays


def _from_arrays(arrays: dict[str, NDArray[Any]]) -> IndexSnapshot:
    if int(arrays["format"]) != FORMAT:
        raise ValueError(f"format {int(arrays['format'])}, expected {FORMAT}")
    present = arrays["chunk_present"].astype(np.bool_).tolist()
    ids = arrays["chunk_ids"].tolist()
    if len(ids) != len(present):
        raise ValueError("chunk_ids and chunk_present differ in length")
    state = {
        name[len(_STATE_PREFIX) :]: array
        for name, array in arrays.items()
        if name.startswith(_STATE_PREFIX)
    }
    return IndexSnapshot(
        state=state,
        chunk_ids=[str(c) if p else None for c, p in zip(ids, present, strict=True)],
        revision=int(arrays["revision"]),
        library_created_at=datetime.fromisoformat(str(arrays["library_created_at"])),
    )


def _checksum(arrays: dict[str, NDArray[Any]]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


def _file_stem(library_id: str) -> str:
    return "".join(c if _SAFE.fullmatch(c) else f"%{ord(c):x}%" for c in library_id)


def _library_id(stem: str) -> str:
    return re.sub(r"%([0-9a-f]+)%", lambda m: chr(int(m.group(1), 16)), stem)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
