"""Turning raw numbers into the contiguous float32 vectors the indexes work on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from domain.errors import DimensionMismatch, InvalidVector
from domain.models import Matrix, Metric, Vector


def as_vector(
    values: Sequence[float] | Vector, dimension: int, *, location: str = "embedding"
) -> Vector:
    """A finite float32 vector of the library's dimension, or a domain error."""
    try:
        vector = np.ascontiguousarray(values, dtype=np.float32)
    except (ValueError, TypeError):
        raise InvalidVector(
            f"{location} must be a flat list of numbers", location=location
        ) from None
    if vector.ndim != 1:
        raise InvalidVector(f"{location} must be a flat list of numbers", location=location)
    if vector.shape[0] != dimension:
        raise DimensionMismatch(dimension, int(vector.shape[0]), location=location)
    if not np.isfinite(vector).all():
        raise InvalidVector(f"{location} holds NaN or an infinite value", location=location)
    return vector


def as_matrix(
    rows: Sequence[Sequence[float] | Vector] | Matrix,
    dimension: int,
    *,
    row_location: str = "embeddings[{}]",
) -> Matrix:
    """A (n, dimension) float32 matrix; an error names the first bad row through
    ``row_location``, a format string taking the row number."""
    if len(rows) == 0:
        return np.empty((0, dimension), dtype=np.float32)
    try:
        matrix = np.ascontiguousarray(rows, dtype=np.float32)
    except (ValueError, TypeError):
        matrix = None
    if matrix is None or matrix.ndim != 2 or matrix.shape[1] != dimension:
        for i, row in enumerate(rows):
            as_vector(row, dimension, location=row_location.format(i))
        raise InvalidVector("embeddings must be lists of numbers", location=row_location.format(0))
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        where = row_location.format(int(np.argmin(finite)))
        raise InvalidVector(f"{where} holds NaN or an infinite value", location=where)
    return matrix


def normalized(matrix: Matrix) -> Matrix:
    """Rows scaled to unit length; a zero row stays zero (it matches nothing under cosine).

    Norms are taken in float64: the float32 sum of squares overflows for |x| past ~1.8e19,
    which would store such a vector as zeros, and underflows below ~1e-19. Every nonzero row
    is divided by its own norm, however small, as cosine does not depend on scale: a floor
    on the norm (1e-12) would score [1e-18, 0] against [1, 1] as 7e-7 instead of 0.707."""
    norms = np.sqrt(np.einsum("...i,...i->...", matrix, matrix, dtype=np.float64))[..., None]
    unit = np.zeros(matrix.shape, dtype=np.float32)
    np.divide(matrix, norms, out=unit, where=norms > 0)
    return unit


def prepare(matrix: Matrix, metric: Metric) -> Matrix:
    """What an index stores for ``metric``: unit vectors for cosine, raw ones otherwise."""
    if metric is Metric.COSINE:
        return normalized(matrix)
    return np.ascontiguousarray(matrix, dtype=np.float32)
