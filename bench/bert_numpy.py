"""A BERT encoder's forward pass in NumPy: sentence embeddings without torch or onnxruntime.

This served all-MiniLM-L6-v2 until the int8 ONNX graph replaced it (1.5× faster, same vectors to
a cosine of 0.999: docs/performance.md); `ingest_bench.py` keeps it as the float32 baseline.

Token, position and segment embeddings, then N layers of multi-head self-attention and a GELU
feed-forward block, each followed by a residual add and layer norm (post-norm, as in BERT).
Weights are Hugging Face `BertModel` tensors read from safetensors.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file

Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
MASKED = np.float32(-1e9)
# Abramowitz & Stegun 7.1.26: erf to within 1.5e-7, below float32's resolution near 1.
ERF_P = 0.3275911
ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


@dataclass(frozen=True)
class BertConfig:
    hidden_size: int
    num_attention_heads: int
    num_hidden_layers: int
    layer_norm_eps: float

    @classmethod
    def from_file(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text())
        assert raw.get("hidden_act", "gelu") == "gelu", "only BERT's exact GELU is implemented"
        return cls(
            raw["hidden_size"],
            raw["num_attention_heads"],
            raw["num_hidden_layers"],
            raw["layer_norm_eps"],
        )


@dataclass(frozen=True)
class LayerNorm:
    weight: Array
    bias: Array
    eps: float

    def __call__(self, x: Array) -> Array:
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return ((x - mean) / np.sqrt(var + self.eps)) * self.weight + self.bias


@dataclass(frozen=True)
class Dense:
    """y = x Wᵀ + b, with W stored transposed once at load time."""

    weight_t: Array
    bias: Array

    def __call__(self, x: Array) -> Array:
        # One 2-D matrix product is a single BLAS call; a 3-D one is a loop of smaller ones.
        flat = x.reshape(-1, x.shape[-1]) @ self.weight_t
        flat += self.bias
        return flat.reshape(*x.shape[:-1], -1)


@dataclass(frozen=True)
class EncoderLayer:
    qkv: Dense
    attention_out: Dense
    attention_norm: LayerNorm
    intermediate: Dense
    output: Dense
    output_norm: LayerNorm


def gelu(x: Array) -> Array:
    """GELU with the exact erf, as BERT's `gelu` activation uses; in place where it can be,
    since this runs on the largest activations of the model."""
    z: Array = np.abs(x)  # NumPy's stubs lose the dtype through `abs`
    z *= np.float32(1 / math.sqrt(2.0))
    t = ERF_P * z
    t += 1.0
    np.reciprocal(t, out=t)
    poly = ERF_A[4] * t
    for a in reversed(ERF_A[:4]):
        poly += a
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # 1 - erf(|x|/√2)
    poly *= np.sign(x)
    np.subtract(2.0, poly, out=poly)  # 1 + erf(x/√2) = 2 - (1 - erf) for x ≥ 0, mirrored below
    poly -= np.float32(1.0) - np.sign(x)
    poly *= x
    poly *= 0.5
    return poly


def softmax(x: Array) -> Array:
    """Softmax over the last axis, overwriting its input."""
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


class BertEncoder:
    def __init__(self, weights: dict[str, np.ndarray], config: BertConfig) -> None:
        self.config = config
        self._word = weights["embeddings.word_embeddings.weight"]
        self._position = weights["embeddings.position_embeddings.weight"]
        self._segment = weights["embeddings.token_type_embeddings.weight"]
        self._embedding_norm = self._norm(weights, "embeddings.LayerNorm")
        self._layers = [
            self._layer(weights, f"encoder.layer.{i}") for i in range(config.num_hidden_layers)
        ]

    @classmethod
    def from_directory(cls, directory: Path) -> BertEncoder:
        config = BertConfig.from_file(directory / "config.json")
        return cls(load_file(str(directory / "model.safetensors")), config)

    def __call__(self, ids: IntArray, mask: IntArray, segments: IntArray) -> Array:
        """Hidden states (batch, tokens, hidden) for padded token ids and their mask."""
        positions = np.arange(ids.shape[1])
        x = self._embedding_norm(
            self._word[ids] + self._position[positions] + self._segment[segments]
        )
        bias = np.where(mask[:, None, None, :] > 0, np.float32(0), MASKED)
        for layer in self._layers:
            x = self._attend(layer, x, bias)
            x = layer.output_norm(layer.output(gelu(layer.intermediate(x))) + x)
        return x

    def _attend(self, layer: EncoderLayer, x: Array, bias: Array) -> Array:
        batch, tokens, hidden = x.shape
        heads = self.config.num_attention_heads
        qkv = layer.qkv(x).reshape(batch, tokens, 3, heads, hidden // heads)
        q, k, v = qkv.transpose(2, 0, 3, 1, 4)
        # Contiguous operands keep the batched products on BLAS (several times faster).
        q = np.ascontiguousarray(q) * np.float32(1 / math.sqrt(hidden // heads))
        scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2))
        scores += bias
        context = (softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(batch, tokens, hidden)
        return layer.attention_norm(layer.attention_out(context) + x)

    def _norm(self, weights: dict[str, np.ndarray], prefix: str) -> LayerNorm:
        eps = self.config.layer_norm_eps
        return LayerNorm(weights[f"{prefix}.weight"], weights[f"{prefix}.bias"], eps)

    def _layer(self, weights: dict[str, np.ndarray], prefix: str) -> EncoderLayer:
        def dense(name: str) -> Dense:
            return Dense(
                weights[f"{prefix}.{name}.weight"].T.copy(), weights[f"{prefix}.{name}.bias"]
            )

        parts = [dense(f"attention.self.{p}") for p in ("query", "key", "value")]
        qkv = Dense(
            np.concatenate([p.weight_t for p in parts], axis=1),
            np.concatenate([p.bias for p in parts]),
        )
        return EncoderLayer(
            qkv=qkv,
            attention_out=dense("attention.output.dense"),
            attention_norm=self._norm(weights, f"{prefix}.attention.output.LayerNorm"),
            intermediate=dense("intermediate.dense"),
            output=dense("output.dense"),
            output_norm=self._norm(weights, f"{prefix}.output.LayerNorm"),
        )
