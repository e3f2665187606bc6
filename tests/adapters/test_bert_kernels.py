"""The compiled steps of the BERT forward pass against their textbook formulas in float64
NumPy (and ``math.erf``), on data that stresses them: wide ranges, large offsets, padding."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.embedders.bert_kernels import (
    add_bias_gelu,
    add_bias_residual_layer_norm,
    embed_tokens,
    erf32,
    masked_softmax,
)

EPS = 1e-12


def layer_norm64(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    normalised: np.ndarray = (x - mean) / np.sqrt(var + EPS)
    return normalised * gamma.astype(np.float64) + beta.astype(np.float64)


def gelu64(v: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    v = v.astype(np.float64)
    gelu: np.ndarray = 0.5 * v * (1.0 + erf(v / math.sqrt(2.0)))
    return gelu


def test_erf32_is_within_a_few_float32_ulps_of_erf_everywhere() -> None:
    xs = np.concatenate([np.linspace(-12, 12, 100_001), [0.0, -0.0, 1e-30, -1e-30, 3.99, 4.01]])
    ours = np.array([erf32(np.float32(x)) for x in xs], dtype=np.float64)
    exact = np.array([math.erf(float(np.float32(x))) for x in xs])

    assert np.max(np.abs(ours - exact)) < 1e-6


@settings(max_examples=50, deadline=None)
@given(scale=st.sampled_from([1e-3, 1.0, 5.0, 30.0]), seed=st.integers(0, 2**32 - 1))
def test_add_bias_gelu_is_the_erf_gelu_of_the_sum(scale: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(7, 96)) * scale).astype(np.float32)
    bias = (rng.normal(size=96) * scale).astype(np.float32)
    expected = gelu64(x.astype(np.float64) + bias)

    add_bias_gelu(x, bias)

    np.testing.assert_allclose(x, expected, rtol=2e-6, atol=1e-6 * scale)


@settings(max_examples=50, deadline=None)
@given(offset=st.sampled_from([0.0, 1e3, -5e4]), seed=st.integers(0, 2**32 - 1))
def test_add_bias_residual_layer_norm_normalises_the_sum_of_three(offset: float, seed: int) -> None:
    # A large common offset is where a one-pass variance would cancel catastrophically.
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(5, 384)) + offset).astype(np.float32)
    bias = rng.normal(size=384).astype(np.float32)
    residual = rng.normal(size=(5, 384)).astype(np.float32)
    gamma = rng.uniform(0.5, 2.0, size=384).astype(np.float32)
    beta = rng.normal(size=384).astype(np.float32)
    summed = x.astype(np.float64) + bias + residual
    expected = layer_norm64(summed, gamma, beta)

    add_bias_residual_layer_norm(x, bias, residual, gamma, beta, EPS)

    # The inputs are float32 sums: their rounding (about 6e-8 of the offset) is the error
    # that survives normalisation.
    tolerance = 1e-5 * max(1.0, abs(offset) / 100)
    np.testing.assert_allclose(x, expected, rtol=0, atol=tolerance)


def test_embed_tokens_normalises_word_plus_position_for_every_token() -> None:
    rng = np.random.default_rng(4)
    words = rng.normal(size=(50, 32)).astype(np.float32)
    positions = rng.normal(size=(16, 32)).astype(np.float32)
    gamma = rng.uniform(0.5, 2.0, size=32).astype(np.float32)
    beta = rng.normal(size=32).astype(np.float32)
    ids = rng.integers(0, 50, size=(3, 11)).astype(np.int64)
    out = np.empty((3, 11, 32), dtype=np.float32)

    embed_tokens(ids, words, positions, gamma, beta, EPS, out)

    expected = layer_norm64(words[ids].astype(np.float64) + positions[:11], gamma, beta)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_masked_softmax_weighs_only_each_rows_own_keys(scale: float) -> None:
    # Scores of +-scale*3 make exp overflow float32 without the max subtracted.
    rng = np.random.default_rng(5)
    lengths = np.array([9, 1, 4], dtype=np.int64)
    scores = (rng.normal(size=(3, 2, 9, 9)) * scale).astype(np.float32)
    original = scores.astype(np.float64)

    masked_softmax(scores, lengths)

    for b, n in enumerate(lengths):
        real = original[b, :, :n, :n]
        expected = np.exp(real - real.max(axis=-1, keepdims=True))
        expected /= expected.sum(axis=-1, keepdims=True)
        np.testing.assert_allclose(scores[b, :, :n, :n], expected, rtol=1e-5, atol=1e-7)
        assert np.all(scores[b, :, :n, n:] == 0.0)
        assert np.all(scores[b, :, n:, :] == 0.0)
