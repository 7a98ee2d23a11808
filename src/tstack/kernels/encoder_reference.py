"""The reference integer pipeline of the encoder: every step spelled in int64 with the public kernels.

Layout per layer, as `transformers`' IBertModel: int8 activations (per-tensor scales), int8 weights per output
channel, int32 accumulation with a 32-bit integer bias, dyadic requantization after every matmul, i-Softmax on the
integer scores (scale S_q·S_k/√d_head), the residual added in a 22-bit requantization, i-LayerNorm on 22-bit
integers, requantization to int8. Embeddings: int8 tables summed in a 16-bit requantization, i-LayerNorm.

Difference from IBertModel: the FFN's int32 accumulator (per-channel scale) is first requantized to a per-tensor
16-bit scale and i-GELU runs on that (I-BERT runs it per channel on the accumulator); one per-tensor GELU constant
set is what a special-function unit such as Gemmini's holds.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from tstack.kernels.encoder_scales import ScaleSource
from tstack.kernels.encoder_weights import EncoderWeights
from tstack.kernels.gelu import int_gelu
from tstack.kernels.gemm import int_matmul
from tstack.kernels.layernorm import int_layernorm
from tstack.kernels.quant import (
    FloatArray,
    IntArray,
    coarsen,
    dyadic,
    int_range,
    quantize,
    shift_round_half_even,
)
from tstack.kernels.requant_plan import common_shift_dyadic
from tstack.kernels.softmax import ibert_exp_min_scale, int_softmax


def act(
    scales: ScaleSource,
    name: str,
    q: IntArray,
    scale: FloatArray | float,
    bits: int,
    residual: IntArray | None = None,
    residual_scale: float | None = None,
) -> tuple[IntArray, float]:
    """QuantAct: dyadic requantization of q (scale per tensor or per last-axis channel) [+ residual] at site
    `name`: the integers and their scale."""

    def batch_absmax() -> float:
        x = q * np.asarray(scale)
        if residual is not None and residual_scale is not None:
            x = x + residual * residual_scale
        return float(np.abs(x).max()) if x.size else 0.0

    s_out = scales.act_scale(name, bits, batch_absmax)
    mult, shift = common_shift_dyadic(np.asarray(scale, dtype=np.float64) / s_out)
    out = q * mult
    out = shift_round_half_even(out, shift)
    if residual is not None and residual_scale is not None:
        dr = dyadic(residual_scale / s_out)
        out += shift_round_half_even(residual * dr.multiplier, dr.shift)
    lo, hi = int_range(bits)
    np.maximum(out, lo, out=out)
    np.minimum(out, hi, out=out)
    return out, s_out


def embedding_sum(weights: EncoderWeights, scales: ScaleSource, ids: IntArray) -> tuple[IntArray, float]:
    """Embeddings: word + token type (0) + position, summed in 16-bit requantizations (i-LayerNorm follows)."""
    batch, seq = ids.shape
    cfg, bw = weights.config, weights.bits
    h, s = act(
        scales,
        "emb.sum1",
        weights.word.values[ids],
        weights.word.scale,
        bw.embedding,
        np.broadcast_to(weights.token_type.values[0], (batch, seq, cfg.d_model)),
        weights.token_type.scale,
    )
    pos = np.broadcast_to(weights.position.values[:seq], h.shape)
    return act(scales, "emb.sum2", h, s, bw.embedding, pos, weights.position.scale)


def _linear(weights: EncoderWeights, name: str, x: IntArray, s_x: float) -> tuple[IntArray, FloatArray]:
    lin = weights.linears[name]
    s_acc = lin.w_scale * s_x
    b_int = quantize(lin.bias, s_acc, weights.bits.bias)
    acc = int_matmul(x, lin.w_int, int(np.abs(x).max(initial=0)), lin.w_absmax, lin.w_int32)
    acc += b_int
    return acc, s_acc


def _layernorm(
    weights: EncoderWeights, scales: ScaleSource, name: str, q: IntArray, s: float, bits: int
) -> tuple[IntArray, FloatArray]:
    shift = scales.ln_shift(name, q, bits)
    params = weights.layernorms[name]
    return int_layernorm(q, s, params.weight, params.bias, bits=bits, shift=shift)


def reference_pass(
    weights: EncoderWeights, scales: ScaleSource, ids: IntArray, mask: npt.NDArray[np.bool_]
) -> tuple[IntArray, float]:
    """The integer last hidden state (batch, seq, d_model) of checked token ids and its scale."""
    cfg, bw = weights.config, weights.bits
    h, s = embedding_sum(weights, scales, ids)
    y, s_y = _layernorm(weights, scales, "emb", h, s, bw.embedding)
    h, s = act(scales, "emb.out", y, s_y, bw.activation)
    key_keep = mask[:, None, None, :]
    dh = cfg.d_model // cfg.heads
    for i in range(cfg.layers):
        h, s = _layer(weights, scales, i, h, s, key_keep, dh)
    return h, s


def _layer(
    weights: EncoderWeights,
    scales: ScaleSource,
    i: int,
    h: IntArray,
    s: float,
    key_keep: npt.NDArray[np.bool_],
    dh: int,
) -> tuple[IntArray, float]:
    cfg, bw = weights.config, weights.bits
    batch, seq, _ = h.shape
    heads = []
    act_scales = []
    for name in ("q", "k", "v"):
        acc, s_acc = _linear(weights, f"{i}.{name}", h, s)
        t, s_t = act(scales, f"{i}.{name}", acc, s_acc, bw.activation)
        heads.append(t.reshape(batch, seq, cfg.heads, dh).transpose(0, 2, 1, 3))
        act_scales.append(s_t)
    q8, k8, v8 = heads
    amax = 2 ** (bw.activation - 1)
    scores = int_matmul(q8, k8.transpose(0, 1, 3, 2).astype(np.float64), amax, amax)
    s_scores = act_scales[0] * act_scales[1] / math.sqrt(dh)
    scores, s_scores, _ = coarsen(scores, s_scores, ibert_exp_min_scale())
    probs, s_p = int_softmax(scores, s_scores, bits=32, output_bits=bw.activation, mask=key_keep)
    ctx = int_matmul(probs, v8.astype(np.float64), 2**bw.activation, amax)
    ctx = ctx.transpose(0, 2, 1, 3).reshape(batch, seq, cfg.d_model)
    c8, s_c = act(scales, f"{i}.ctx", ctx, s_p * act_scales[2], bw.activation)
    acc, s_acc = _linear(weights, f"{i}.o", c8, s_c)
    r, s_r = act(scales, f"{i}.res1", acc, s_acc, bw.layernorm_input, h, s)
    y, s_y = _layernorm(weights, scales, f"{i}.ln1", r, s_r, bw.layernorm_input)
    h1, s1 = act(scales, f"{i}.ln1.out", y, s_y, bw.activation)
    acc, s_acc = _linear(weights, f"{i}.ff1", h1, s1)
    g_in, s_g = act(scales, f"{i}.gelu.in", acc, s_acc, bw.gelu_input)
    g, s_gout = int_gelu(g_in, s_g, bits=bw.gelu_input)
    g8, s_g8 = act(scales, f"{i}.gelu.out", g, s_gout, bw.activation)
    acc, s_acc = _linear(weights, f"{i}.ff2", g8, s_g8)
    r, s_r = act(scales, f"{i}.res2", acc, s_acc, bw.layernorm_input, h1, s1)
    y, s_y = _layernorm(weights, scales, f"{i}.ln2", r, s_r, bw.layernorm_input)
    return act(scales, f"{i}.ln2.out", y, s_y, bw.activation)
