"""Loading a slice of the WordNet noun embeddings (all-MiniLM-L6-v2, 384 dimensions) that
the examples ingest: ``../shared/data/wordnet-nouns-minilm.npz`` next to the repo, or the
path in ``STACKSDB_WORDNET``."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = REPO_ROOT / ".." / "shared" / "data" / "wordnet-nouns-minilm.npz"


def default_path() -> Path:
    return Path(os.environ.get("STACKSDB_WORDNET", DEFAULT_PATH))


@dataclass(frozen=True)
class WordNet:
    """The first ``limit`` base synsets and every held-out query."""

    ids: list[str]
    texts: list[str]
    vectors: npt.NDArray[np.float32]
    query_texts: list[str]
    queries: npt.NDArray[np.float32]

    def chunks(self) -> list[dict[str, Any]]:
        """One chunk per synset (its own document), with the lemma and gloss length as
        metadata; the vectors go separately, as ``add_chunks(..., embeddings=...)``."""
        return [
            {
                "id": synset,
                "document_id": synset,
                "text": text,
                "metadata": {"lemma": lemma(text), "gloss_words": len(text.split())},
            }
            for synset, text in zip(self.ids, self.texts, strict=True)
        ]


def lemma(text: str) -> str:
    """``"dog: a domesticated carnivore..."`` -> ``"dog"``."""
    return text.split(":", 1)[0]


def load(path: Path, limit: int) -> WordNet:
    """The first ``limit`` rows of the base arrays, read without loading the whole archive
    (its 81,115 texts alone take 170 MB once decoded)."""
    with zipfile.ZipFile(path) as archive:
        return WordNet(
            ids=[str(s) for s in _head(archive, "base_id", limit)],
            texts=[str(s) for s in _head(archive, "base_text", limit)],
            vectors=_head(archive, "base", limit).astype(np.float32),
            query_texts=[str(s) for s in _head(archive, "query_text", None)],
            queries=_head(archive, "queries", None).astype(np.float32),
        )


def _head(archive: zipfile.ZipFile, name: str, limit: int | None) -> npt.NDArray[Any]:
    """The first ``limit`` rows (all if None) of one C-ordered ``.npy`` member, streamed."""
    with archive.open(f"{name}.npy") as member:
        version = np.lib.format.read_magic(member)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran_order, dtype = read_header(member)
        if fortran_order:
            raise ValueError(f"{name}: Fortran-ordered arrays are not supported")
        rows = shape[0] if limit is None else min(limit, shape[0])
        row_items = int(np.prod(shape[1:], dtype=np.int64))
        raw = member.read(rows * row_items * dtype.itemsize)
        return np.frombuffer(raw, dtype=dtype).reshape((rows, *shape[1:]))
