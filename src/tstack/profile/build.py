"""The real PyTorch model of a `ModelSpec`: a `transformers` model with random weights and eager attention.

Eager attention keeps Q x K^T, softmax and scores x V as separate ops, which the paper's breakdown (Figs. 7-8)
needs. Three builders cover the families whose structure tstack can label module by module: BERT-like
encoders (post-norm LayerNorm, learned positions), GPT-2-like decoders (pre-norm LayerNorm, learned positions)
and Llama-style decoders (RMSNorm, rotary positions, SwiGLU). Every module that matters to the breakdown gets a
scope label (see `Scope`), which the classifier combines with each op's name and shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tstack.errors import SpecError, UnsupportedModelError
from tstack.workload.model import Activation, Family, ModelSpec, Norm, NormPlacement, PositionEmbedding


class Arch(StrEnum):
    BERT = "bert"
    GPT2 = "gpt2"
    LLAMA = "llama"


class Scope(StrEnum):
    """What a module computes; ops inherit the scope of the innermost labelled module they run in."""

    MHA_PROJ = "mha_proj"  # a Q/K/V/output projection (Linear or GPT-2 Conv1D)
    FFN_PROJ = "ffn_proj"  # an FFN projection
    ATTN = "attn"  # attention core: what the attention module does outside its projections
    MLP = "mlp"  # the FFN module outside its projections and activation (SwiGLU's gate product)
    NORM = "norm"
    ACTIVATION = "activation"
    BLOCK = "block"  # a layer (or BERT's *Output module) outside its children: residual adds
    EMBED = "embed"
    HEAD = "head"  # pooler, LM head
    ROPE = "rope"  # the rotary table
    MODEL = "model"  # the whole model: masks, position ids, embedding sums


SUPPORTED = (
    "BERT-like encoders (LayerNorm after each block, learned positions)",
    "GPT-2-like decoders (LayerNorm before each block, learned positions)",
    "Llama-style decoders (RMSNorm, rotary positions, SwiGLU)",
)


@dataclass(frozen=True, slots=True)
class TorchModel:
    """A built model, its architecture and the scope of each labelled module (by qualified name)."""

    spec: ModelSpec
    arch: Arch
    module: Any = field(compare=False)  # torch.nn.Module
    scopes: tuple[tuple[str, Scope], ...]
    max_positions: int
    device: str


def _unsupported(spec: ModelSpec, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"model {spec.name!r} has no PyTorch builder ({why}); tstack profile supports {'; '.join(SUPPORTED)}"
    )


def pick_arch(spec: ModelSpec) -> Arch:
    """The builder for `spec`, or an `UnsupportedModelError` that says why none fits."""
    if spec.patch is not None:
        raise _unsupported(spec, "image-patch input")
    if not spec.is_uniform:
        raise _unsupported(spec, "layers differ in heads or FFN width")
    if spec.embedding_proj_dim not in (None, spec.d_model):
        raise _unsupported(spec, "projected embeddings")
    if spec.family is Family.ENCODER:
        ok = (
            spec.norm is Norm.LAYERNORM
            and spec.norm_placement is NormPlacement.POST
            and spec.position_embedding is PositionEmbedding.LEARNED
            and spec.activation is not Activation.SWIGLU
            and spec.heads[0] * spec.head_dim == spec.d_model
            and spec.kv_heads[0] == spec.heads[0]
        )
        if not ok:
            raise _unsupported(spec, "an encoder that is not BERT-like")
        return Arch.BERT
    if spec.norm is Norm.RMSNORM and spec.position_embedding is PositionEmbedding.ROTARY:
        if spec.activation is not Activation.SWIGLU or spec.norm_placement is not NormPlacement.PRE:
            raise _unsupported(spec, "an RMSNorm decoder without pre-norm SwiGLU")
        return Arch.LLAMA
    ok = (
        spec.norm is Norm.LAYERNORM
        and spec.norm_placement is NormPlacement.PRE
        and spec.position_embedding is PositionEmbedding.LEARNED
        and spec.activation is not Activation.SWIGLU
        and spec.attn_bias
        and spec.mlp_bias
        and spec.heads[0] * spec.head_dim == spec.d_model
        and spec.kv_heads[0] == spec.heads[0]
    )
    if not ok:
        raise _unsupported(spec, "a decoder that is neither GPT-2-like nor Llama-style")
    return Arch.GPT2


_HF_ACT = {Activation.GELU: "gelu", Activation.GELU_TANH: "gelu_new", Activation.RELU: "relu"}


def _config(spec: ModelSpec, arch: Arch, positions: int) -> Any:
    import transformers

    cfg: Any
    if arch is Arch.BERT:
        cfg = transformers.BertConfig(
            vocab_size=spec.vocab_size,
            hidden_size=spec.d_model,
            num_hidden_layers=spec.n_layers,
            num_attention_heads=spec.heads[0],
            intermediate_size=spec.d_ff[0],
            hidden_act=_HF_ACT[spec.activation],
            max_position_embeddings=positions,
            type_vocab_size=max(spec.type_vocab_size, 1),
        )
    elif arch is Arch.GPT2:
        cfg = transformers.GPT2Config(
            vocab_size=spec.vocab_size,
            n_embd=spec.d_model,
            n_layer=spec.n_layers,
            n_head=spec.heads[0],
            n_inner=spec.d_ff[0],
            activation_function=_HF_ACT[spec.activation],
            n_positions=positions,
            bos_token_id=spec.vocab_size - 1,  # GPT-2's <|endoftext|> is the last token
            eos_token_id=spec.vocab_size - 1,
        )
    else:
        cfg = transformers.LlamaConfig(
            vocab_size=spec.vocab_size,
            hidden_size=spec.d_model,
            num_hidden_layers=spec.n_layers,
            num_attention_heads=spec.heads[0],
            num_key_value_heads=spec.kv_heads[0],
            head_dim=spec.head_dim,
            intermediate_size=spec.d_ff[0],
            max_position_embeddings=positions,
            attention_bias=spec.attn_bias,
            mlp_bias=spec.mlp_bias,
        )
    cfg._attn_implementation = "eager"  # separate QK^T, softmax and SV ops
    return cfg


def _scopes(arch: Arch, module: Any, pooler: bool) -> list[tuple[str, Scope]]:
    out: list[tuple[str, Scope]] = [("", Scope.MODEL)]
    if arch is Arch.BERT:
        out.append(("embeddings", Scope.EMBED))
        out.append(("embeddings.LayerNorm", Scope.NORM))
        for i in range(len(module.encoder.layer)):
            p = f"encoder.layer.{i}"
            out += [
                (p, Scope.BLOCK),
                (f"{p}.attention.self", Scope.ATTN),
                *((f"{p}.attention.self.{n}", Scope.MHA_PROJ) for n in ("query", "key", "value")),
                (f"{p}.attention.output", Scope.BLOCK),
                (f"{p}.attention.output.dense", Scope.MHA_PROJ),
                (f"{p}.attention.output.LayerNorm", Scope.NORM),
                (f"{p}.intermediate", Scope.MLP),
                (f"{p}.intermediate.dense", Scope.FFN_PROJ),
                (f"{p}.intermediate.intermediate_act_fn", Scope.ACTIVATION),
                (f"{p}.output", Scope.BLOCK),
                (f"{p}.output.dense", Scope.FFN_PROJ),
                (f"{p}.output.LayerNorm", Scope.NORM),
            ]
        if pooler:
            out.append(("pooler", Scope.HEAD))
    elif arch is Arch.GPT2:
        out += [("wte", Scope.EMBED), ("wpe", Scope.EMBED), ("ln_f", Scope.NORM)]
        for i in range(len(module.h)):
            p = f"h.{i}"
            out += [
                (p, Scope.BLOCK),
                (f"{p}.ln_1", Scope.NORM),
                (f"{p}.ln_2", Scope.NORM),
                (f"{p}.attn", Scope.ATTN),
                (f"{p}.attn.c_attn", Scope.MHA_PROJ),
                (f"{p}.attn.c_proj", Scope.MHA_PROJ),
                (f"{p}.mlp", Scope.MLP),
                (f"{p}.mlp.c_fc", Scope.FFN_PROJ),
                (f"{p}.mlp.c_proj", Scope.FFN_PROJ),
                (f"{p}.mlp.act", Scope.ACTIVATION),
            ]
    else:
        out += [("embed_tokens", Scope.EMBED), ("rotary_emb", Scope.ROPE), ("norm", Scope.NORM)]
        for i in range(len(module.layers)):
            p = f"layers.{i}"
            out += [
                (p, Scope.BLOCK),
                (f"{p}.input_layernorm", Scope.NORM),
                (f"{p}.post_attention_layernorm", Scope.NORM),
                (f"{p}.self_attn", Scope.ATTN),
                *((f"{p}.self_attn.{n}", Scope.MHA_PROJ) for n in ("q_proj", "k_proj", "v_proj", "o_proj")),
                (f"{p}.mlp", Scope.MLP),
                *((f"{p}.mlp.{n}", Scope.FFN_PROJ) for n in ("gate_proj", "up_proj", "down_proj")),
                (f"{p}.mlp.act_fn", Scope.ACTIVATION),
            ]
    return out


def check_positions(spec: ModelSpec, needed: int, extend_positions: bool) -> int:
    """The position-table size to build: the model's own, or `needed` when extending is allowed."""
    have = spec.max_positions
    if needed <= have:
        return have
    if not extend_positions:
        raise SpecError(
            f"sequence length {needed} exceeds the {have} positions of model {spec.name!r}; "
            f"use a shorter --seq or pass --extend-positions to enlarge the position table (random weights)"
        )
    return needed


def build_torch_model(
    spec: ModelSpec,
    *,
    positions: int | None = None,
    device: str = "cpu",
    seed: int = 0,
) -> TorchModel:
    """`spec` as a `transformers` model (random weights from `seed`, eval mode, fp32, eager attention).

    `positions` sizes the learned position table (default: the model's `max_positions`). The global torch RNG is
    left as it was.
    """
    import torch
    import transformers

    arch = pick_arch(spec)
    n_pos = positions or spec.max_positions
    if n_pos <= 0:
        raise SpecError(f"model {spec.name!r} has no positions; give a positive max_positions")
    cfg = _config(spec, arch, n_pos)
    devices = [torch.device(device)] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        module: Any
        if arch is Arch.BERT:
            module = transformers.BertModel(cfg, add_pooling_layer=spec.pooler)
        elif arch is Arch.GPT2:
            module = transformers.GPT2Model(cfg)
        else:
            module = transformers.LlamaModel(cfg)
    module = module.to(device).eval()
    names = {n for n, _ in module.named_modules()}
    scopes = tuple((n, s) for n, s in _scopes(arch, module, spec.pooler) if n in names)
    return TorchModel(spec, arch, module, scopes, n_pos, device)
