"""The integer weights of a BERT-family encoder: its shape (from a parsed `ModelSpec`), bit widths, and its float
weights quantized once (int8 per output channel, embedding tables per tensor), read-only.

The Hugging Face `config.json` is parsed by `tstack.spec` (one parser); here a parsed `ModelSpec` is checked for
what the integer forward implements (post-LN, GELU, learned absolute positions, token types, uniform layers), and
the weights are read from `model.safetensors` without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from tstack.errors import TstackError
from tstack.kernels.quant import FloatArray, IntArray, quantize, symmetric_scale
from tstack.workload.model import (
    Activation,
    Family,
    ModelSpec,
    Norm,
    NormPlacement,
    PositionEmbedding,
)


class ModelLoadError(TstackError):
    """A model folder cannot be read as a BERT-family encoder."""


@dataclass(frozen=True, slots=True)
class EncoderConfig:
    """The shape of a post-LN BERT-family encoder (every layer alike)."""

    layers: int
    d_model: int
    heads: int
    d_ff: int
    vocab: int
    max_positions: int
    type_vocab: int
    activation: str = "gelu"


@dataclass(frozen=True, slots=True)
class BitWidths:
    """Bit widths of the integer pipeline (I-BERT's defaults)."""

    weight: int = 8
    bias: int = 32
    activation: int = 8
    embedding: int = 16
    gelu_input: int = 16
    layernorm_input: int = 22


@dataclass(frozen=True, slots=True, eq=False)
class QuantLinear:
    """One linear layer with int8 weights per output channel; compared by identity (it holds large arrays)."""

    w_int: FloatArray  # (in, out), integer-valued, as float64 for BLAS
    w_int32: npt.NDArray[np.float32]  # the same integers as float32 (the fast pipeline's GEMM operand)
    w_scale: FloatArray  # (out,)
    bias: FloatArray  # float (out,), quantized at run time against the input scale (32-bit, scale s_w·s_x)
    w_absmax: int
    #: max over output channels of Σ_k |w_kj|: |Σ_k a_k w_kj| ≤ max|a| · w_col_l1 for every partial sum.
    w_col_l1: int


@dataclass(frozen=True, slots=True, eq=False)
class EmbeddingTable:
    """An embedding table quantized per tensor: rows of `values` times `scale`."""

    values: IntArray
    scale: float


@dataclass(frozen=True, slots=True, eq=False)
class LayerNormParams:
    """A LayerNorm's float γ and β (the integer kernel folds them in at its output)."""

    weight: FloatArray
    bias: FloatArray


@dataclass(frozen=True, slots=True, eq=False)
class EncoderWeights:
    """The quantized weights of an encoder, read-only; compared by identity (they hold large arrays).

    Linear layers are keyed `"{layer}.{q,k,v,o,ff1,ff2}"`, LayerNorms `"emb"`, `"{layer}.ln1"`, `"{layer}.ln2"`.
    """

    config: EncoderConfig
    bits: BitWidths
    word: EmbeddingTable
    position: EmbeddingTable
    token_type: EmbeddingTable
    layernorms: Mapping[str, LayerNormParams]
    linears: Mapping[str, QuantLinear]


def _read_only(*arrays: npt.NDArray[np.generic]) -> None:
    for a in arrays:
        a.flags.writeable = False


def _quant_linear(w: npt.NDArray[np.floating], b: npt.NDArray[np.floating], bits: int) -> QuantLinear:
    w64 = np.asarray(w, dtype=np.float64)
    s = symmetric_scale(w64.min(axis=1), w64.max(axis=1), bits)
    q = quantize(w64, s[:, None], bits)
    wt = np.ascontiguousarray(q.T.astype(np.float64))
    l1 = int(np.abs(q).sum(axis=1).max())
    lin = QuantLinear(wt, wt.astype(np.float32), s, np.array(b, dtype=np.float64), int(np.abs(q).max()), l1)
    _read_only(lin.w_int, lin.w_int32, lin.w_scale, lin.bias)
    return lin


def quantize_weights(
    state: Mapping[str, npt.NDArray[np.floating]], config: EncoderConfig, bits: BitWidths | None = None
) -> EncoderWeights:
    """Quantize a BertModel state dict of numpy arrays (keys as `BertModel.state_dict()`, an optional `bert.`
    prefix removed) to the integer encoder's weights."""
    bw = bits or BitWidths()
    sd = {k.removeprefix("bert."): np.asarray(v) for k, v in state.items()}

    def get(key: str) -> npt.NDArray[np.floating]:
        if key not in sd:
            raise ModelLoadError(f"weight {key!r} is missing; is this a BertModel checkpoint?")
        return sd[key]

    def table(key: str) -> EmbeddingTable:
        w = np.asarray(get(key), dtype=np.float64)
        s = float(symmetric_scale(w.min(), w.max(), bw.weight))
        out = EmbeddingTable(quantize(w, s, bw.weight), s)
        _read_only(out.values)
        return out

    word = table("embeddings.word_embeddings.weight")
    pos = table("embeddings.position_embeddings.weight")
    tt = table("embeddings.token_type_embeddings.weight")
    lns: dict[str, LayerNormParams] = {}
    lins: dict[str, QuantLinear] = {}

    def ln(name: str, prefix: str) -> None:
        params = LayerNormParams(
            np.array(get(prefix + ".weight"), dtype=np.float64), np.array(get(prefix + ".bias"), dtype=np.float64)
        )
        _read_only(params.weight, params.bias)
        lns[name] = params

    ln("emb", "embeddings.LayerNorm")
    for i in range(config.layers):
        p = f"encoder.layer.{i}."
        for name, key in (
            ("q", "attention.self.query"),
            ("k", "attention.self.key"),
            ("v", "attention.self.value"),
            ("o", "attention.output.dense"),
            ("ff1", "intermediate.dense"),
            ("ff2", "output.dense"),
        ):
            lins[f"{i}.{name}"] = _quant_linear(get(p + key + ".weight"), get(p + key + ".bias"), bw.weight)
        ln(f"{i}.ln1", p + "attention.output.LayerNorm")
        ln(f"{i}.ln2", p + "output.LayerNorm")
    return EncoderWeights(config, bw, word, pos, tt, MappingProxyType(lns), MappingProxyType(lins))


#: The largest width, vocabulary or table the integer forward accepts (guards against a malformed config).
_MAX_DIMENSION = 2**20


def encoder_config(model: ModelSpec, origin: str = "") -> EncoderConfig:
    """The integer forward's shape of a parsed model, or a `ModelLoadError` saying why the model is not a post-LN
    GELU BERT-family encoder with learned absolute positions and token types (BertModel-style checkpoints).
    `origin` (e.g. the config.json path) starts the error messages."""
    origin = origin or f"model {model.name!r}"
    wanted = {
        "family": (model.family, Family.ENCODER),
        "activation": (model.activation, Activation.GELU),
        "norm": (model.norm, Norm.LAYERNORM),
        "norm placement": (model.norm_placement, NormPlacement.POST),
        "position embedding": (model.position_embedding, PositionEmbedding.LEARNED),
    }
    off = [f"{what} {str(got)!r}" for what, (got, want) in wanted.items() if got != want]
    if off or model.patch is not None or not model.embedding_norm or model.type_vocab_size < 1:
        why = ", ".join(off) or "no token-type embeddings or embedding LayerNorm"
        raise ModelLoadError(
            f"{origin}: {why}: not a GELU BERT-family encoder; tstack's integer forward supports BertModel-style "
            "checkpoints"
        )
    if not model.is_uniform or model.kv_heads != model.heads or model.position_offset:
        raise ModelLoadError(f"{origin}: layers must be alike, without grouped-query attention or position offsets")
    heads, d_ff = model.heads[0], model.d_ff[0]
    if model.d_model % heads or model.head_dim * heads != model.d_model:
        raise ModelLoadError(f"{origin}: hidden_size {model.d_model} is not divisible by {heads} heads")
    sizes = {
        "hidden_size": model.d_model,
        "intermediate_size": d_ff,
        "vocab_size": model.vocab_size,
        "max_position_embeddings": model.max_positions,
        "type_vocab_size": model.type_vocab_size,
    }
    for name, value in sizes.items():
        if not 0 < value <= _MAX_DIMENSION:
            raise ModelLoadError(f"{origin}: {name} must be a positive integer up to 2^20, got {value}")
    return EncoderConfig(
        layers=model.n_layers,
        d_model=model.d_model,
        heads=heads,
        d_ff=d_ff,
        vocab=model.vocab_size,
        max_positions=model.max_positions,
        type_vocab=model.type_vocab_size,
    )


def load_bert(folder: str | Path, config: EncoderConfig, bits: BitWidths | None = None) -> EncoderWeights:
    """The quantized weights in a Hugging Face BertModel folder's `model.safetensors` (no torch needed), for the
    shape `config` (from `encoder_config` of the folder's parsed `config.json`)."""
    weights = Path(folder) / "model.safetensors"
    if not weights.is_file():
        raise ModelLoadError(f"{folder} must hold model.safetensors (a Hugging Face BertModel folder)")
    try:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
    except ImportError:  # pragma: no cover - safetensors comes with transformers
        raise ModelLoadError(
            "reading model.safetensors needs the safetensors package: pip install safetensors"
        ) from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot read {weights}: {' '.join(str(exc).split())[:200]}; download the checkpoint again"
        ) from None
    try:
        return quantize_weights(state, config, bits)
    except (ValueError, IndexError) as exc:
        raise ModelLoadError(
            f"{weights} does not match its config.json: {' '.join(str(exc).split())[:200]}; use the folder's own config"
        ) from None
