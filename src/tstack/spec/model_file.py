"""Validated model descriptions (YAML presets and user files) and their conversion to core `ModelSpec`s."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tstack.errors import SpecError
from tstack.workload.model import (
    Activation,
    Family,
    ModelSpec,
    Norm,
    NormPlacement,
    PatchEmbedding,
    PositionEmbedding,
    ResNetSpec,
)

# Bounds far above every real model (the largest published Transformers have ~130 layers, d_model ~2^14, vocabularies
# ~2^18) that keep a typo such as 10^9 layers from building a billion-op workload and exhausting memory.
MAX_LAYERS = 4096
MAX_WIDTH = 2**20
MAX_VOCAB = 2**24

PositiveInt = Annotated[int, Field(gt=0)]
Width = Annotated[int, Field(gt=0, le=MAX_WIDTH)]
PerLayer = Width | Annotated[list[Width], Field(max_length=MAX_LAYERS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PatchFile(_Strict):
    image_px: Width
    patch_px: Width
    channels: Width = 3


class TransformerFile(_Strict):
    """A Transformer as written in YAML; single values of heads / kv_heads / d_ff apply to every layer."""

    name: str
    family: Family
    description: str = ""
    source: str = ""
    layers: Annotated[int, Field(gt=0, le=MAX_LAYERS)]
    d_model: Width
    heads: PerLayer
    kv_heads: PerLayer | None = None
    d_ff: PerLayer
    head_dim: Width | None = None
    activation: Activation = Activation.GELU
    norm: Norm = Norm.LAYERNORM
    norm_placement: NormPlacement = NormPlacement.POST
    vocab_size: int = Field(30522, ge=0, le=MAX_VOCAB)
    max_positions: int = Field(512, ge=0, le=2**31)
    position_embedding: PositionEmbedding = PositionEmbedding.LEARNED
    position_offset: int = Field(0, ge=0, le=MAX_WIDTH)
    type_vocab_size: int = Field(0, ge=0, le=MAX_VOCAB)
    attn_bias: bool = True
    mlp_bias: bool = True
    norm_bias: bool = True
    embedding_norm: bool = False
    final_norm: bool = False
    pooler: bool = False
    lm_head: bool = False
    tied_embeddings: bool = True
    embedding_proj_dim: Width | None = None
    patch: PatchFile | None = None


class ResNetFile(_Strict):
    name: str
    family: Literal["cnn"]
    description: str = ""
    source: str = ""
    blocks_per_stage: Annotated[list[Annotated[int, Field(gt=0, le=MAX_LAYERS)]], Field(max_length=64)] = [3, 4, 6, 3]
    base_width: Annotated[int, Field(gt=0, le=2**16)] = 64
    expansion: Annotated[int, Field(gt=0, le=64)] = 4
    image_px: Annotated[int, Field(gt=0, le=2**14)] = 224
    in_channels: Annotated[int, Field(gt=0, le=2**16)] = 3
    num_classes: Annotated[int, Field(gt=0, le=MAX_VOCAB)] = 1000
    stride_in_3x3: bool = True


def _per_layer(value: int | list[int], layers: int, field: str, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * layers
    if len(value) != layers:
        raise SpecError(f"model {name!r}: {field} lists {len(value)} values for {layers} layers")
    return tuple(value)


def to_model_spec(f: TransformerFile) -> ModelSpec:
    heads = _per_layer(f.heads, f.layers, "heads", f.name)
    kv_heads = heads if f.kv_heads is None else _per_layer(f.kv_heads, f.layers, "kv_heads", f.name)
    d_ff = _per_layer(f.d_ff, f.layers, "d_ff", f.name)
    head_dim = f.head_dim
    if head_dim is None:
        bad = sorted({h for h in heads if f.d_model % h})
        if bad:
            raise SpecError(
                f"model {f.name!r}: d_model {f.d_model} is not divisible by {bad[0]} heads; "
                f"use a head count that divides d_model, or set head_dim explicitly"
            )
        if len(set(heads)) > 1:
            raise SpecError(
                f"model {f.name!r}: layers have different head counts, so head_dim cannot be derived from "
                f"d_model; set head_dim explicitly"
            )
        head_dim = f.d_model // heads[0]
    patch = PatchEmbedding(f.patch.image_px, f.patch.patch_px, f.patch.channels) if f.patch else None
    if patch and patch.image_px % patch.patch_px:
        raise SpecError(f"model {f.name!r}: image_px {patch.image_px} is not a multiple of patch_px {patch.patch_px}")
    return ModelSpec(
        name=f.name,
        family=f.family,
        n_layers=f.layers,
        d_model=f.d_model,
        heads=heads,
        kv_heads=kv_heads,
        d_ff=d_ff,
        head_dim=head_dim,
        activation=f.activation,
        norm=f.norm,
        norm_placement=f.norm_placement,
        vocab_size=f.vocab_size,
        max_positions=f.max_positions,
        position_embedding=f.position_embedding,
        position_offset=f.position_offset,
        type_vocab_size=f.type_vocab_size,
        attn_bias=f.attn_bias,
        mlp_bias=f.mlp_bias,
        norm_bias=f.norm_bias and f.norm is Norm.LAYERNORM,
        embedding_norm=f.embedding_norm,
        final_norm=f.final_norm,
        pooler=f.pooler,
        lm_head=f.lm_head,
        tied_embeddings=f.tied_embeddings,
        embedding_proj_dim=f.embedding_proj_dim if f.embedding_proj_dim != f.d_model else None,
        patch=patch,
    )


def to_resnet_spec(f: ResNetFile) -> ResNetSpec:
    return ResNetSpec(
        name=f.name,
        blocks_per_stage=tuple(f.blocks_per_stage),
        base_width=f.base_width,
        expansion=f.expansion,
        image_px=f.image_px,
        in_channels=f.in_channels,
        num_classes=f.num_classes,
        stride_in_3x3=f.stride_in_3x3,
    )


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{where}: {err['msg']}"


def model_from_mapping(data: Any, origin: str) -> ModelSpec | ResNetSpec:
    """Validate a parsed YAML/JSON mapping and convert it; `origin` names the file in error messages."""
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: expected a mapping of model fields, got {type(data).__name__}")
    try:
        if data.get("family") == "cnn":
            return to_resnet_spec(ResNetFile.model_validate(data))
        return to_model_spec(TransformerFile.model_validate(data))
    except ValidationError as exc:
        raise SpecError(f"{origin}: invalid model description: {_first_error(exc)}") from None
