"""A BERT encoder's forward pass in NumPy: token ids in, one hidden vector per token out.

The model of all-MiniLM-L6-v2 is a plain post-LN BERT (Devlin et al., 2019; the layout of
Hugging Face's ``BertModel``, whose weight names ``model.safetensors`` uses):

    x = LayerNorm(word[id] + position[t] + token_type[0])
    for each layer:
        q, k, v = split(x @ W_qkv + b_qkv)                  one fused product, heads of 32
        a = softmax(q k^T / sqrt(32), keys past the text masked) v
        x = LayerNorm(x + a @ W_o + b_o)
        x = LayerNorm(x + GELU(x @ W_in + b_in) @ W_out + b_out)

Weights are loaded once, transposed to (inputs, outputs) so every product is ``x @ W``, the
three attention projections concatenated into one (hidden, 3 * hidden) matrix so a layer
reads ``x`` once for them, and the 1/sqrt(head size) scale folded into the query projection.
A batch is (batch, seq) ids padded on the right; attention works on (batch, heads, seq, head)
views of the fused projection, so no head is copied out. The products are float32 BLAS
calls; the steps between them are the compiled kernels of ``bert_kernels``.

Cost per text of n tokens: 12 n h^2 + 2 n^2 h multiply-adds per layer (h = 384), the first
term (the four products) dominant below n = 6 h.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file

from adapters.embedders.bert_kernels import (
    Floats,
    Ints,
    add_bias_gelu,
    add_bias_residual_layer_norm,
    embed_tokens,
    masked_softmax,
)


@dataclass(frozen=True)
class BertConfig:
    """The shape of the model, from its ``config.json``."""

    hidden: int
    heads: int
    layers: int
    intermediate: int
    max_positions: int
    layer_norm_eps: float

    @property
    def head_size(self) -> int:
        return self.hidden // self.heads

    @classmethod
    def read(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text())
        if raw.get("hidden_act") != "gelu" or raw.get("position_embedding_type") != "absolute":
            raise ValueError(f"{path}: not a BERT with GELU and absolute positions")
        return cls(
            hidden=int(raw["hidden_size"]),
            heads=int(raw["num_attention_heads"]),
            layers=int(raw["num_hidden_layers"]),
            intermediate=int(raw["intermediate_size"]),
            max_positions=int(raw["max_position_embeddings"]),
            layer_norm_eps=float(raw["layer_norm_eps"]),
        )


@dataclass(frozen=True)
class EncoderLayer:
    """One transformer layer's weights, each matrix (inputs, outputs) and C-contiguous."""

    qkv_weight: Floats
    qkv_bias: Floats
    attention_out_weight: Floats
    attention_out_bias: Floats
    attention_norm_gamma: Floats
    attention_norm_beta: Floats
    ff_in_weight: Floats
    ff_in_bias: Floats
    ff_out_weight: Floats
    ff_out_bias: Floats
    ff_norm_gamma: Floats
    ff_norm_beta: Floats


@dataclass(frozen=True)
class Bert:
    """A loaded encoder. Read-only after loading, so any number of threads may run it."""

    config: BertConfig
    words: Floats
    positions: Floats  # position embeddings with the (single) token-type embedding added
    embedding_norm_gamma: Floats
    embedding_norm_beta: Floats
    layers: tuple[EncoderLayer, ...]

    @classmethod
    def load(cls, model_dir: Path) -> Bert:
        """The encoder in ``model_dir`` (``config.json`` and ``model.safetensors``)."""
        config = BertConfig.read(model_dir / "config.json")
        tensors = load_file(str(model_dir / "model.safetensors"))

        def weight(name: str) -> Floats:
            return np.ascontiguousarray(tensors[name], dtype=np.float32)

        def layer(i: int) -> EncoderLayer:
            p = f"encoder.layer.{i}."
            scale = np.float32(1.0 / math.sqrt(config.head_size))
            projections = ("query", "key", "value")
            w = [weight(f"{p}attention.self.{m}.weight").T for m in projections]
            b = [weight(f"{p}attention.self.{m}.bias") for m in projections]
            w[0], b[0] = w[0] * scale, b[0] * scale
            return EncoderLayer(
                qkv_weight=np.ascontiguousarray(np.concatenate(w, axis=1)),
                qkv_bias=np.concatenate(b),
                attention_out_weight=_transposed(weight(f"{p}attention.output.dense.weight")),
                attention_out_bias=weight(f"{p}attention.output.dense.bias"),
                attention_norm_gamma=weight(f"{p}attention.output.LayerNorm.weight"),
                attention_norm_beta=weight(f"{p}attention.output.LayerNorm.bias"),
                ff_in_weight=_transposed(weight(f"{p}intermediate.dense.weight")),
                ff_in_bias=weight(f"{p}intermediate.dense.bias"),
                ff_out_weight=_transposed(weight(f"{p}output.dense.weight")),
                ff_out_bias=weight(f"{p}output.dense.bias"),
                ff_norm_gamma=weight(f"{p}output.LayerNorm.weight"),
                ff_norm_beta=weight(f"{p}output.LayerNorm.bias"),
            )

        segment = weight("embeddings.token_type_embeddings.weight")[0]
        return cls(
            config=config,
            words=weight("embeddings.word_embeddings.weight"),
            positions=weight("embeddings.position_embeddings.weight") + segment,
            embedding_norm_gamma=weight("embeddings.LayerNorm.weight"),
            embedding_norm_beta=weight("embeddings.LayerNorm.bias"),
            layers=tuple(layer(i) for i in range(config.layers)),
        )

    def encode(self, token_ids: Ints, lengths: Ints) -> Floats:
        """The last layer's hidden states, (batch, seq, hidden), for right-padded
        ``token_ids`` (batch, seq) of which row ``b`` holds ``lengths[b]`` tokens. Positions
        past a row's length hold values no real position depends on."""
        batch, seq = token_ids.shape
        if seq > self.config.max_positions:
            raise ValueError(f"{seq} tokens exceed the model's {self.config.max_positions}")
        eps = self.config.layer_norm_eps
        x = np.empty((batch, seq, self.config.hidden), dtype=np.float32)
        embed_tokens(
            token_ids,
            self.words,
            self.positions,
            self.embedding_norm_gamma,
            self.embedding_norm_beta,
            eps,
            x,
        )
        rows = x.reshape(batch * seq, self.config.hidden)
        for layer in self.layers:
            rows = self._layer(layer, rows, batch, seq, lengths)
        return rows.reshape(batch, seq, self.config.hidden)

    def _layer(self, layer: EncoderLayer, x: Floats, batch: int, seq: int, lengths: Ints) -> Floats:
        """One encoder layer over (batch * seq, hidden) rows; returns the new rows."""
        config, eps = self.config, self.config.layer_norm_eps
        qkv = np.matmul(x, layer.qkv_weight)
        qkv += layer.qkv_bias
        # (batch, seq, 3, heads, head) -> three (batch, heads, seq, head) views, no copies.
        split = qkv.reshape(batch, seq, 3, config.heads, config.head_size).transpose(2, 0, 3, 1, 4)
        queries, keys, values = split[0], split[1], split[2]
        scores = np.matmul(queries, keys.transpose(0, 1, 3, 2))
        masked_softmax(scores, lengths)
        # The context lands as (batch, seq, heads, head), which is (batch * seq, hidden).
        context = np.empty((batch, seq, config.heads, config.head_size), dtype=np.float32)
        np.matmul(scores, values, out=context.transpose(0, 2, 1, 3))
        attended = np.matmul(
            context.reshape(batch * seq, config.hidden), layer.attention_out_weight
        )
        add_bias_residual_layer_norm(
            attended,
            layer.attention_out_bias,
            x,
            layer.attention_norm_gamma,
            layer.attention_norm_beta,
            eps,
        )
        inner = np.matmul(attended, layer.ff_in_weight)
        add_bias_gelu(inner, layer.ff_in_bias)
        out: Floats = np.matmul(inner, layer.ff_out_weight)
        add_bias_residual_layer_norm(
            out, layer.ff_out_bias, attended, layer.ff_norm_gamma, layer.ff_norm_beta, eps
        )
        return out


def _transposed(matrix: NDArray[np.float32]) -> Floats:
    """A Hugging Face (outputs, inputs) weight as a C-contiguous (inputs, outputs) one."""
    return np.ascontiguousarray(matrix.T)
