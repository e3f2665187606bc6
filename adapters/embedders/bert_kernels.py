"""The element-wise steps of a BERT encoder, compiled: embedding gather, layer norms, GELU and
the masked softmax.

The matrix products of the forward pass are BLAS calls (``adapters/embedders/bert.py``);
everything between them touches each element once or twice, and NumPy would spend a
temporary array and a pass over memory on every operator. Each kernel here does its step in
one pass, in place, and runs without the GIL (``@kernel``), so the embedder's worker threads
use one core each. Every array is C-contiguous float32, with batch rows padded on the right:
``lengths[b]`` says how many of row ``b``'s positions hold tokens.

Sums (layer-norm mean and variance, softmax denominators) accumulate in float64, so they do
not depend on the order the compiler picks; the values stay float32.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from domain.index.jit import kernel

Floats = NDArray[np.float32]
Ints = NDArray[np.int64]

_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))
_ERF_CLAMP = np.float32(4.0)
_MINUS_ONE = np.float32(-1.0)
# erf(x) = x P(x^2) / Q(x^2) on [-4, 4] (erf is +-1 in float32 beyond), the rational
# approximation of Eigen and XLA's float32 erf: within 5e-7 of the exact erf (a few float32
# ulps), and, unlike a libm call, it vectorises. Coefficients from the lowest power up.
_ERF_P = tuple(
    np.float32(c)
    for c in (
        -1.60960333262415e-02,
        -2.95459980854025e-03,
        -7.34990630326855e-04,
        -5.69250639462346e-05,
        -2.10102402082508e-06,
        2.77068142495902e-08,
        -2.72614225801306e-10,
    )
)
_ERF_Q = tuple(
    np.float32(c)
    for c in (
        -1.42647390514189e-02,
        -7.37332916720468e-03,
        -1.68282697438203e-03,
        -2.13374055278905e-04,
        -1.45660718464996e-05,
    )
)


@kernel
def _normalise_row(row: Floats, gamma: Floats, beta: Floats, eps: float) -> None:
    """LayerNorm of one hidden vector, in place: (x - mean) / sqrt(var + eps) * gamma + beta."""
    width = row.shape[0]
    total = 0.0
    for c in range(width):
        total += row[c]
    mean = total / width
    spread = 0.0
    for c in range(width):
        deviation = row[c] - mean
        spread += deviation * deviation
    scale = 1.0 / math.sqrt(spread / width + eps)
    for c in range(width):
        row[c] = (row[c] - mean) * scale * gamma[c] + beta[c]


@kernel
def embed_tokens(
    token_ids: Ints,
    words: Floats,
    positions: Floats,
    gamma: Floats,
    beta: Floats,
    eps: float,
    out: Floats,
) -> None:
    """``out[b, t] = LayerNorm(words[token_ids[b, t]] + positions[t])`` for a (batch, seq)
    id matrix into a (batch, seq, hidden) array; ``positions`` already holds the token-type
    embedding (one segment, so one row of it, added once at load time)."""
    batch, seq = token_ids.shape
    hidden = words.shape[1]
    for b in range(batch):
        for t in range(seq):
            word = words[token_ids[b, t]]
            row = out[b, t]
            for c in range(hidden):
                row[c] = word[c] + positions[t, c]
            _normalise_row(row, gamma, beta, eps)


@kernel
def add_bias_residual_layer_norm(
    x: Floats, bias: Floats, residual: Floats, gamma: Floats, beta: Floats, eps: float
) -> None:
    """``x = LayerNorm(x + bias + residual)`` row by row, in place, for (rows, hidden)
    arrays: the "add & norm" that closes each sub-layer of a post-LN encoder."""
    rows, hidden = x.shape
    for r in range(rows):
        row = x[r]
        skip = residual[r]
        for c in range(hidden):
            row[c] += bias[c] + skip[c]
        _normalise_row(row, gamma, beta, eps)


@kernel
def erf32(x: np.float32) -> np.float32:
    """erf in float32 arithmetic (see ``_ERF_P``)."""
    x = min(max(x, -_ERF_CLAMP), _ERF_CLAMP)
    x2 = x * x
    p = _ERF_P[6]
    p = p * x2 + _ERF_P[5]
    p = p * x2 + _ERF_P[4]
    p = p * x2 + _ERF_P[3]
    p = p * x2 + _ERF_P[2]
    p = p * x2 + _ERF_P[1]
    p = p * x2 + _ERF_P[0]
    q = _ERF_Q[4]
    q = q * x2 + _ERF_Q[3]
    q = q * x2 + _ERF_Q[2]
    q = q * x2 + _ERF_Q[1]
    q = q * x2 + _ERF_Q[0]
    # x * p / q, but numba guards every float division with a zero test (to raise
    # ZeroDivisionError), and that branch keeps the loop from vectorising: 8x slower. A power
    # of -1 has no guard, and q cannot be 0: every Q coefficient is negative, so q <= Q[0].
    return x * p * q**_MINUS_ONE


@kernel
def add_bias_gelu(x: Floats, bias: Floats) -> None:
    """``x = GELU(x + bias)`` in place, with the exact (erf) GELU that BERT's ``"gelu"``
    names: 0.5 * v * (1 + erf(v / sqrt 2))."""
    rows, width = x.shape
    for r in range(rows):
        row = x[r]
        for c in range(width):
            v = row[c] + bias[c]
            row[c] = _HALF * v * (_ONE + erf32(v * _INV_SQRT2))


@kernel
def masked_softmax(scores: Floats, lengths: Ints) -> None:
    """Softmax over the last axis of (batch, heads, queries, keys) attention scores, in
    place, over the first ``lengths[b]`` keys only: padding gets probability 0, as BERT's
    additive mask of a large negative number gives it. Padded query rows become all zeros
    (mean pooling never reads them, and no real token attends to them)."""
    batch, heads, queries, keys = scores.shape
    for b in range(batch):
        n = lengths[b]
        for h in range(heads):
            for q in range(queries):
                row = scores[b, h, q]
                if q >= n:
                    row[:] = 0.0
                    continue
                top = row[0]
                for k in range(1, n):
                    top = max(top, row[k])
                total = 0.0
                for k in range(n):
                    e = math.exp(row[k] - top)
                    row[k] = e
                    total += e
                inverse = 1.0 / total
                for k in range(n):
                    row[k] *= inverse
                for k in range(n, keys):
                    row[k] = 0.0
