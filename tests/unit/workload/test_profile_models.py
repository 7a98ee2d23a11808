"""Small models of the three families the profiler builds (2 layers, d = 256); helpers only, no tests here."""

from __future__ import annotations

from tstack.workload import Activation, Family, ModelSpec, Norm, NormPlacement, PositionEmbedding


def tiny_bert(n: int = 2, d: int = 256, heads: int = 4, d_ff: int = 1024, positions: int = 512) -> ModelSpec:
    return ModelSpec(
        "tiny-bert",
        Family.ENCODER,
        n,
        d,
        (heads,) * n,
        (heads,) * n,
        (d_ff,) * n,
        d // heads,
        vocab_size=1000,
        max_positions=positions,
        type_vocab_size=2,
        embedding_norm=True,
        pooler=True,
    )


def tiny_gpt2(n: int = 2, d: int = 256, heads: int = 4, d_ff: int = 1024, positions: int = 512) -> ModelSpec:
    return ModelSpec(
        "tiny-gpt2",
        Family.DECODER,
        n,
        d,
        (heads,) * n,
        (heads,) * n,
        (d_ff,) * n,
        d // heads,
        activation=Activation.GELU_TANH,
        norm_placement=NormPlacement.PRE,
        vocab_size=1000,
        max_positions=positions,
        final_norm=True,
    )


def tiny_llama(n: int = 2, d: int = 256, heads: int = 4, kv_heads: int = 2, d_ff: int = 688) -> ModelSpec:
    return ModelSpec(
        "tiny-llama",
        Family.DECODER,
        n,
        d,
        (heads,) * n,
        (kv_heads,) * n,
        (d_ff,) * n,
        d // heads,
        activation=Activation.SWIGLU,
        norm=Norm.RMSNORM,
        norm_placement=NormPlacement.PRE,
        vocab_size=1000,
        max_positions=512,
        position_embedding=PositionEmbedding.ROTARY,
        attn_bias=False,
        mlp_bias=False,
        final_norm=True,
    )
