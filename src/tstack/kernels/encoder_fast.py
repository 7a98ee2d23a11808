"""The fast integer pipeline of the encoder: the reference pipeline's integers, computed faster.

int8 activations stay in float32 (the GEMM operands), integer GEMMs run in float BLAS where every partial sum is
exact (`tstack.kernels.gemm`), requantizations run in float64 where that is provably exact (`RequantPlan`) on
cache-sized row blocks, and the kernels' int32 cores are called directly where their bounds hold. With frozen scales
the FFN's 16-bit requantization, i-GELU and 8-bit requantization are fused per row block. The integers equal the
reference pipeline's (tests/unit/kernels/test_kernels_encoder.py, tests/integration/test_kernels_minilm.py).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from tstack.kernels._runtime import for_blocks, scratch
from tstack.kernels.encoder_reference import embedding_sum
from tstack.kernels.encoder_scales import ScaleSource
from tstack.kernels.encoder_weights import EncoderWeights
from tstack.kernels.gelu import (
    gelu_bound,
    gelu_constants,
    gelu_int32_block,
    gelu_int32_bound,
    gelu_int32_into,
    int_gelu,
)
from tstack.kernels.gemm import AnyArray, exact_float_matmul
from tstack.kernels.layernorm import ibert_layernorm_into, int_layernorm
from tstack.kernels.quant import INT64_LIMIT, FloatArray, IntArray, quantize
from tstack.kernels.requant_plan import BLOCK_ELEMENTS, RequantPlan
from tstack.kernels.softmax import ibert_exp_min_scale, ibert_softmax_into, int_softmax


class _FastPass:
    """One forward of the fast pipeline over fixed weights and a scale source."""

    def __init__(self, weights: EncoderWeights, scales: ScaleSource) -> None:
        self.weights = weights
        self.scales = scales

    def requant(
        self,
        name: str,
        q: AnyArray,
        scale: FloatArray | float,
        bits: int,
        *,
        out_dtype: npt.DTypeLike,
        bias: IntArray | None = None,
        residual: AnyArray | None = None,
        residual_scale: float | None = None,
        residual_absmax: int = 0,
        q_absmax: int | None = None,
    ) -> tuple[AnyArray, float]:
        """The reference `act` on integer-valued q (+ an integer per-channel bias): the same integers, returned as
        `out_dtype`, in cache-sized row blocks. q holds exact integers below 2^51 (GEMM results and kernel outputs
        do); `q_absmax`, when known, bounds |q| (saves two reductions on the int64 path). See `RequantPlan`."""
        scale_arr = np.asarray(scale, dtype=np.float64)

        def batch_absmax() -> float:
            x = q.astype(np.float64) if bias is None else q + bias.astype(np.float64)
            x *= scale_arr
            if residual is not None and residual_scale is not None:
                x += residual.astype(np.float64) * residual_scale
            return float(np.abs(x).max()) if x.size else 0.0

        s_out = self.scales.act_scale(name, bits, batch_absmax)
        plan = RequantPlan.make(scale_arr / s_out, bits, None if residual_scale is None else residual_scale / s_out)
        out = np.empty(q.shape, dtype=out_dtype)
        n = q.shape[-1]
        q2, out2 = q.reshape(-1, n), out.reshape(-1, n)
        r2 = None if residual is None else residual.reshape(-1, n)

        def block(a: int, b: int) -> None:
            plan.run(q2[a:b], bias, None if r2 is None else r2[a:b], residual_absmax, out2[a:b], q_absmax)

        for_blocks(q2.shape[0], max(1, BLOCK_ELEMENTS // n), block)
        return out, s_out

    def gelu_stage(self, i: int, acc: AnyArray, s_acc: FloatArray, b_int: IntArray) -> tuple[AnyArray, float]:
        """gelu.in requantization (16 bits), i-GELU and gelu.out requantization (8 bits) of the FFN accumulator.
        With frozen scales, fused per cache-sized row block (the 16-bit and GELU integers never leave the cache);
        while calibrating (each site needs its whole-tensor range first), stage by stage."""
        bw = self.weights.bits
        in_name, out_name = f"{i}.gelu.in", f"{i}.gelu.out"
        s_g_frozen, s8_frozen = self.scales.frozen_act_scale(in_name), self.scales.frozen_act_scale(out_name)
        if s_g_frozen is not None and s8_frozen is not None:
            s_g, s8 = s_g_frozen, s8_frozen
            q_absmax = 2 ** (bw.gelu_input - 1)
            g_bound = gelu_int32_bound(q_absmax, s_g)
            if gelu_bound(bw.gelu_input, s_g) <= INT64_LIMIT and g_bound < 2**31:
                b, c, one, shift, s_erf = gelu_constants(s_g)
                s_gout = -(s_g * s_erf / 2)
                plan_in = RequantPlan.make(np.asarray(s_acc, dtype=np.float64) / s_g, bw.gelu_input, None)
                plan_out = RequantPlan.make(np.asarray(s_gout / s8), bw.activation, None)
                out = np.empty(acc.shape, dtype=np.float32)
                n = acc.shape[-1]
                acc2, out2 = acc.reshape(-1, n), out.reshape(-1, n)

                def block(a: int, z: int) -> None:
                    rows = z - a
                    g_in = scratch("encoder.gelu_in", np.int32, rows * n).reshape(rows, n)
                    plan_in.run(acc2[a:z], b_int, None, 0, g_in, None)
                    g = scratch("encoder.gelu", np.int64, rows * n)
                    gelu_int32_block(g_in.reshape(-1), b, c, one, shift, g)
                    plan_out.run(g.reshape(rows, n), None, None, 0, out2[a:z], g_bound, consume=True)

                for_blocks(acc2.shape[0], max(1, BLOCK_ELEMENTS // n), block)
                return out, s8
        g_in, s_g = self.requant(in_name, acc, s_acc, bw.gelu_input, bias=b_int, out_dtype=np.int32)
        g, s_gout, g_bound_or_none = _gelu(g_in, s_g, bw.gelu_input)
        return self.requant(out_name, g, s_gout, bw.activation, out_dtype=np.float32, q_absmax=g_bound_or_none)

    def layernorm(self, name: str, q: npt.NDArray[np.integer], s: float, bits: int) -> tuple[AnyArray, FloatArray]:
        """i-LayerNorm of `bits`-bit integers q (int64 out): the kernel's fast rows where their bounds hold (no
        input checks: q comes from a `bits`-bit requantization), else the kernel."""
        shift = self.scales.ln_shift(name, q, bits)
        params = self.weights.layernorms[name]
        w, b = params.weight, params.bias
        n = q.shape[-1]
        if not np.any(w == 0):
            res = ibert_layernorm_into(q.reshape(-1, n), shift, 2**bits - 1, 2 ** (bits - 1), w, b)
            if res is not None:
                y, s_ln = res
                return y.reshape(q.shape), s_ln * w
        return int_layernorm(q, s, w, b, bits=bits, shift=shift)

    def linear(
        self, name: str, x: npt.NDArray[np.float32], s_x: float, x_absmax: int
    ) -> tuple[npt.NDArray[np.floating], FloatArray, IntArray]:
        """Exact int8 GEMM in float BLAS: (accumulator without bias, its per-channel scale, the 32-bit bias)."""
        lin = self.weights.linears[name]
        s_acc = lin.w_scale * s_x
        b_int = quantize(lin.bias, s_acc, self.weights.bits.bias)
        return exact_float_matmul(x, lin.w_int32, x_absmax, lin.w_absmax, lin.w_col_l1), s_acc, b_int

    def forward(self, ids: IntArray, mask: npt.NDArray[np.bool_]) -> tuple[IntArray, float]:
        batch, seq = ids.shape
        cfg, bw = self.weights.config, self.weights.bits
        h, s = embedding_sum(self.weights, self.scales, ids)
        y, s_y = self.layernorm("emb", h, s, bw.embedding)
        x, s = self.requant("emb.out", y, s_y, bw.activation, out_dtype=np.float32)
        keep = None if bool(mask.all()) else np.broadcast_to(mask[:, None, None, :], (batch, cfg.heads, seq, seq))
        dh = cfg.d_model // cfg.heads
        for i in range(cfg.layers):
            x, s = self.layer(i, x, s, keep, dh)
        return x.astype(np.int64), s

    def attention(
        self, i: int, h: AnyArray, s: float, keep: npt.NDArray[np.bool_] | None, dh: int
    ) -> tuple[AnyArray, float]:
        """Q, K, V, i-Softmax of the scores and the context, requantized to int8 (float32): (context, its scale)."""
        cfg, bw = self.weights.config, self.weights.bits
        batch, seq, d = h.shape
        amax = 2 ** (bw.activation - 1)
        heads = []
        act_scales = []
        for name in ("q", "k", "v"):
            acc, s_acc, b_int = self.linear(f"{i}.{name}", h, s, amax)
            t, s_t = self.requant(f"{i}.{name}", acc, s_acc, bw.activation, bias=b_int, out_dtype=np.float32)
            heads.append(t.reshape(batch, seq, cfg.heads, dh).transpose(0, 2, 1, 3))
            act_scales.append(s_t)
        q8, k8, v8 = heads
        scores = exact_float_matmul(q8, k8.transpose(0, 1, 3, 2), amax, amax)
        s_scores = act_scales[0] * act_scales[1] / math.sqrt(dh)
        min_scale = ibert_exp_min_scale()
        if s_scores < min_scale:  # `coarsen`: drop low bits by a floor shift (exact in float: a power of two)
            k = math.ceil(math.log2(min_scale / s_scores))
            scores = np.floor(scores * 2.0**-k)
            s_scores = s_scores * 2**k
        rows = scores.reshape(-1, seq).astype(np.int32)
        probs: AnyArray = np.empty(rows.shape, dtype=np.float32)
        keep2 = None if keep is None else keep.reshape(-1, seq)
        if ibert_softmax_into(rows, s_scores, bw.activation, probs, keep2):
            s_p = 1.0 / 2**bw.activation
        else:
            p64, s_p = int_softmax(rows, s_scores, bits=32, output_bits=bw.activation, mask=keep2)
            probs = p64.astype(np.float32)
        probs4 = probs.reshape(batch, cfg.heads, seq, seq)
        ctx = exact_float_matmul(probs4, v8, 2**bw.activation, amax)
        ctx = ctx.transpose(0, 2, 1, 3).reshape(batch, seq, d)
        return self.requant(f"{i}.ctx", ctx, s_p * act_scales[2], bw.activation, out_dtype=np.float32)

    def add_norm(
        self, i: int, k: int, acc: AnyArray, s_acc: FloatArray, b_int: IntArray, residual: AnyArray, s_residual: float
    ) -> tuple[AnyArray, float]:
        """Layer `i`'s `k`-th residual add and i-LayerNorm (k = 1 after attention, 2 after the FFN): the sublayer's
        last accumulator (`o` or `ff2`) plus its 32-bit bias plus the int8 `residual`, requantized to the LayerNorm's
        input width (site `i.resk`), normalized (`i.lnk`) and requantized to int8 (`i.lnk.out`)."""
        bw = self.weights.bits
        r, s_r = self.requant(
            f"{i}.res{k}",
            acc,
            s_acc,
            bw.layernorm_input,
            bias=b_int,
            residual=residual,
            residual_scale=s_residual,
            residual_absmax=2 ** (bw.activation - 1),
            out_dtype=np.int32,
        )
        y, s_y = self.layernorm(f"{i}.ln{k}", r, s_r, bw.layernorm_input)
        return self.requant(f"{i}.ln{k}.out", y, s_y, bw.activation, out_dtype=np.float32)

    def layer(
        self, i: int, h: AnyArray, s: float, keep: npt.NDArray[np.bool_] | None, dh: int
    ) -> tuple[AnyArray, float]:
        """One encoder layer with float32 int8 activations (see the module docstring)."""
        amax = 2 ** (self.weights.bits.activation - 1)
        c8, s_c = self.attention(i, h, s, keep, dh)
        acc, s_acc, b_int = self.linear(f"{i}.o", c8, s_c, amax)
        h1, s1 = self.add_norm(i, 1, acc, s_acc, b_int, h, s)
        acc, s_acc, b_int = self.linear(f"{i}.ff1", h1, s1, amax)
        g8, s_g8 = self.gelu_stage(i, acc, s_acc, b_int)
        acc, s_acc, b_int = self.linear(f"{i}.ff2", g8, s_g8, amax)
        return self.add_norm(i, 2, acc, s_acc, b_int, h1, s1)


def _gelu(q: AnyArray, s: float, bits: int) -> tuple[AnyArray, float, int | None]:
    """i-GELU of `bits`-bit integers (int64 out) and a bound on |out|: the kernel's int32 core where its bound
    holds, else the kernel."""
    q_absmax = 2 ** (bits - 1)
    bound = gelu_int32_bound(q_absmax, s)
    if gelu_bound(bits, s) <= INT64_LIMIT and bound < 2**31:
        b_int, c_int, one_int, shift, s_erf = gelu_constants(s)
        out = np.empty(q.shape, dtype=np.int64)
        gelu_int32_into(q.reshape(-1), b_int, c_int, one_int, shift, out.reshape(-1))
        return out, -(s * s_erf / 2), bound
    g, s_g = int_gelu(q, s, bits=bits)
    return g, s_g, None


def fast_pass(
    weights: EncoderWeights, scales: ScaleSource, ids: IntArray, mask: npt.NDArray[np.bool_]
) -> tuple[IntArray, float]:
    """The integer last hidden state (batch, seq, d_model) of checked token ids and its scale: the reference
    pipeline's integers."""
    return _FastPass(weights, scales).forward(ids, mask)
