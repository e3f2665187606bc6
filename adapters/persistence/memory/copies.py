"""Copies of entities in and out of the in-memory store.

The store keeps its own copies and hands out fresh ones, so mutating a saved or fetched
entity never changes what is stored.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from domain.models import Chunk, Document, Library, Metadata


def copy_metadata(metadata: Metadata) -> Metadata:
    # Metadata values are scalars or lists of scalars (see domain.models.MetadataValue):
    # copying the lists is a full deep copy, at a fraction of copy.deepcopy's cost.
    return {
        key: list(value) if isinstance(value, list) else value for key, value in metadata.items()
    }


def copy_library(library: Library) -> Library:
    return dataclasses.replace(library, metadata=copy_metadata(library.metadata))


def copy_document(document: Document) -> Document:
    return dataclasses.replace(document, metadata=copy_metadata(document.metadata))


def copy_chunk(chunk: Chunk) -> Chunk:
    # float32 like the SQLite adapter stores, so both adapters return the same bits.
    embedding = np.array(chunk.embedding, dtype=np.float32, order="C", copy=True)
    return dataclasses.replace(chunk, embedding=embedding, metadata=copy_metadata(chunk.metadata))
