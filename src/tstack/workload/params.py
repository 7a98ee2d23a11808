"""Parameter counts and KV-cache sizes, closed-form from the architecture.

Counts follow the Hugging Face base classes (`BertModel`, `GPT2Model`, `LlamaModel`, `ViTModel`, ...): they include
embeddings, norms, biases and a pooler where the model has one, and an LM head only when it is untied.
"""

from __future__ import annotations

from tstack.workload.model import Activation, AnyModelSpec, ModelSpec, Norm, PositionEmbedding, ResNetSpec


def _norm_params(spec: ModelSpec) -> int:
    if spec.norm is Norm.RMSNORM:
        return spec.d_model
    return spec.d_model * (2 if spec.norm_bias else 1)


def layer_params(spec: ModelSpec, layer: int) -> int:
    d, qw, kvw, dff = spec.d_model, spec.q_width(layer), spec.kv_width(layer), spec.d_ff[layer]
    attn = d * qw + 2 * d * kvw + qw * d
    if spec.attn_bias:
        attn += qw + 2 * kvw + d
    n_up = 2 if spec.activation is Activation.SWIGLU else 1
    ffn = n_up * d * dff + dff * d
    if spec.mlp_bias:
        ffn += n_up * dff + d
    return attn + ffn + 2 * _norm_params(spec)


def embedding_params(spec: ModelSpec) -> int:
    width = spec.embed_width
    if spec.patch is not None:
        p = spec.patch
        count = p.channels * p.patch_px**2 * spec.d_model + spec.d_model + spec.d_model  # conv, bias, class token
        count += (p.n_patches + 1) * spec.d_model  # positions
    else:
        count = spec.vocab_size * width
        if spec.position_embedding is PositionEmbedding.LEARNED:  # added after any projection: d_model wide
            count += (spec.max_positions + spec.position_offset) * spec.d_model
        count += spec.type_vocab_size * width
    if spec.embedding_proj_dim:
        count += 2 * width * spec.d_model  # project_in and project_out, no bias
    if spec.embedding_norm:
        count += _norm_params(spec)
    return count


def transformer_params(spec: ModelSpec) -> int:
    count = embedding_params(spec) + sum(layer_params(spec, i) for i in range(spec.n_layers))
    if spec.final_norm:
        count += _norm_params(spec)
    if spec.pooler:
        count += spec.d_model * spec.d_model + spec.d_model
    if spec.lm_head and not spec.tied_embeddings:
        count += spec.vocab_size * spec.embed_width
    return count


def resnet_params(spec: ResNetSpec) -> int:
    """Conv weights (no bias), BatchNorm gamma and beta, FC weight and bias (as torchvision's resnet50)."""
    count = spec.in_channels * spec.base_width * 49 + 2 * spec.base_width
    c_in = spec.base_width
    for stage, n_blocks in enumerate(spec.blocks_per_stage):
        width = spec.base_width * 2**stage
        c_out = width * spec.expansion
        for block in range(n_blocks):
            count += c_in * width + width * width * 9 + width * c_out + 2 * (width + width + c_out)
            if block == 0:
                count += c_in * c_out + 2 * c_out
            c_in = c_out
    return count + c_in * spec.num_classes + spec.num_classes


def count_params(spec: AnyModelSpec) -> int:
    return resnet_params(spec) if isinstance(spec, ResNetSpec) else transformer_params(spec)


def kv_cache_bytes(spec: ModelSpec, seq_len: int, *, batch: int = 1, bits: int = 8) -> int:
    """Bytes of the K and V caches of all layers holding `seq_len` tokens (0 for encoders, which keep none)."""
    if spec.family.value != "decoder":
        return 0
    elements = sum(2 * batch * seq_len * spec.kv_width(i) for i in range(spec.n_layers))
    return elements * bits // 8
