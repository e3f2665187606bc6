"""Columnar metadata of one library, for evaluating a filter over every chunk at once.

``MetadataIndex`` keeps, per metadata key, typed NumPy columns indexed by the chunk's label
(see ``domain.labels.LabelMap``): float64 numbers, int64 microseconds for RFC 3339 strings,
booleans, and strings dictionary-encoded as int32 codes; list values go to inverted lists
(element -> set of labels). ``id``, ``document_id``, ``created_at`` and ``updated_at`` are
columns too. Document metadata (``document.KEY``) is kept once per document, in the same
columnar form over document slots, plus each label's document slot: a ``document.KEY`` leaf
is evaluated over documents (usually far fewer than chunks) and gathered onto labels with
one fancy-index, so updating a document's metadata costs O(its keys), not O(its chunks).

``mask(filter)`` answers exactly what ``domain.filters.matches`` answers for each chunk
(the property tests check it). Every leaf costs O(n) vectorised NumPy work over the labels,
except: ``contains`` on a string field loops in Python over the field's *distinct* strings
(not its chunks); ``contains`` on ``id`` loops over the chunk ids; ``eq``/``in`` on ``id``
and list membership cost O(matches). ``and``/``or``/``not`` are O(n) per node.

Not thread-safe: callers hold the library's lock, as they do for its vector index.

Modules, from the bottom up
    ``columns``: typed NumPy columns over slots and the mask helpers.
    ``strings``: scalar strings dictionary-encoded as int32 codes.
    ``lists``: list values as inverted lists (element -> slots).
    ``fields``: one metadata key, a column per kind of value, and its leaves.
    ``table``: metadata dictionaries over slots, one field per key in use.
    ``documents``: document slots, their metadata, and each label's document slot.
    ``index``: ``MetadataIndex`` itself: labels, ids, timestamps and the filter walk.
"""

from domain.metadata_index.index import MetadataIndex

__all__ = ["MetadataIndex"]
