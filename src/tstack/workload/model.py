"""Architecture descriptions: what a model is, independent of batch, sequence length or hardware.

`ModelSpec` describes a Transformer with per-layer heads and FFN widths (so heterogeneous NAS candidates are
first-class); `ResNetSpec` describes the bottleneck ResNet the paper contrasts Transformers with. Both are frozen
and hashable; they are built from YAML presets or Hugging Face configs by `tstack.spec`, never by parsing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tstack.errors import SpecError


class Family(StrEnum):
    ENCODER = "encoder"
    DECODER = "decoder"


class Activation(StrEnum):
    GELU = "gelu"  # exact erf form (BERT, ViT, GPT-NeoX)
    GELU_TANH = "gelu_tanh"  # tanh approximation (GPT-2 "gelu_new")
    RELU = "relu"  # OPT
    SWIGLU = "swiglu"  # Llama / Mistral: silu(x W_gate) * (x W_up)


class Norm(StrEnum):
    LAYERNORM = "layernorm"
    RMSNORM = "rmsnorm"


class NormPlacement(StrEnum):
    POST = "post"  # BERT: LN(x + F(x))
    PRE = "pre"  # GPT-2, Llama: x + F(LN(x))


class PositionEmbedding(StrEnum):
    LEARNED = "learned"  # a table of max_positions rows, added to the token embedding
    ROTARY = "rotary"  # applied to q and k inside attention; no parameters
    NONE = "none"


@dataclass(frozen=True, slots=True)
class PatchEmbedding:
    """ViT-style image input: a conv with kernel = stride = patch_px, plus a class token."""

    image_px: int
    patch_px: int
    channels: int

    @property
    def n_patches(self) -> int:
        return (self.image_px // self.patch_px) ** 2


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A Transformer architecture.

    `heads`, `kv_heads` and `d_ff` hold one entry per layer. `head_dim` is shared by all layers, so the Q/K/V
    width of a layer is heads[i] * head_dim, which need not equal d_model (NAS candidates, some Llamas).
    """

    name: str
    family: Family
    n_layers: int
    d_model: int
    heads: tuple[int, ...]
    kv_heads: tuple[int, ...]
    d_ff: tuple[int, ...]
    head_dim: int
    activation: Activation = Activation.GELU
    norm: Norm = Norm.LAYERNORM
    norm_placement: NormPlacement = NormPlacement.POST
    vocab_size: int = 30522
    max_positions: int = 512
    position_embedding: PositionEmbedding = PositionEmbedding.LEARNED
    position_offset: int = 0  # extra rows in the learned position table (OPT reserves 2)
    type_vocab_size: int = 0  # BERT's token-type (segment) embeddings; 0 = none
    attn_bias: bool = True
    mlp_bias: bool = True
    norm_bias: bool = True  # LayerNorm beta; RMSNorm never has one
    embedding_norm: bool = False  # BERT: LayerNorm right after the embeddings
    final_norm: bool = False  # pre-norm models: a norm after the last layer
    pooler: bool = False  # BERT/ViT pooler: dense d x d + tanh on the first token
    lm_head: bool = False  # the model carries a language-model head
    tied_embeddings: bool = True  # the LM head reuses the token embedding (no extra parameters)
    embedding_proj_dim: int | None = None  # OPT-350m: embeddings of this width, projected in and out
    patch: PatchEmbedding | None = None  # ViT: image patches instead of a token vocabulary

    def __post_init__(self) -> None:
        n = self.n_layers
        if n <= 0:
            raise SpecError(f"model {self.name!r}: n_layers must be positive, got {n}")
        if self.d_model <= 0 or self.head_dim <= 0:
            raise SpecError(f"model {self.name!r}: d_model and head_dim must be positive")
        for field_name in ("heads", "kv_heads", "d_ff"):
            values = getattr(self, field_name)
            if len(values) != n:
                raise SpecError(
                    f"model {self.name!r}: {field_name} has {len(values)} entries for {n} layers; "
                    f"give one value per layer or a single value for all"
                )
            if any(v <= 0 for v in values):
                raise SpecError(f"model {self.name!r}: every {field_name} entry must be positive")
        for i, (h, kv) in enumerate(zip(self.heads, self.kv_heads, strict=True)):
            if h % kv:
                raise SpecError(
                    f"model {self.name!r}: layer {i} has {h} heads and {kv} kv_heads; "
                    f"kv_heads must divide heads (grouped-query attention)"
                )

    @property
    def is_uniform(self) -> bool:
        return len(set(zip(self.heads, self.kv_heads, self.d_ff, strict=True))) == 1

    def q_width(self, layer: int) -> int:
        return self.heads[layer] * self.head_dim

    def kv_width(self, layer: int) -> int:
        return self.kv_heads[layer] * self.head_dim

    @property
    def embed_width(self) -> int:
        return self.embedding_proj_dim or self.d_model

    def default_seq_len(self) -> int | None:
        """ViT's sequence is fixed by the image: patches plus the class token."""
        return self.patch.n_patches + 1 if self.patch else None


@dataclass(frozen=True, slots=True)
class ResNetSpec:
    """A bottleneck ResNet (He et al. 2016): stem conv 7x7/2, max-pool 3x3/2, four stages, avg-pool, FC.

    `stride_in_3x3` selects torchvision's "v1.5" (stride on the 3x3 conv of a stage's first block) over the
    original v1 (stride on the first 1x1).
    """

    name: str
    blocks_per_stage: tuple[int, ...] = (3, 4, 6, 3)
    base_width: int = 64
    expansion: int = 4
    image_px: int = 224
    in_channels: int = 3
    num_classes: int = 1000
    stride_in_3x3: bool = True

    def __post_init__(self) -> None:
        if not self.blocks_per_stage or any(b <= 0 for b in self.blocks_per_stage):
            raise SpecError(f"model {self.name!r}: blocks_per_stage must be positive integers")
        if self.image_px < 32:
            raise SpecError(f"model {self.name!r}: image_px must be at least 32, got {self.image_px}")


AnyModelSpec = ModelSpec | ResNetSpec
