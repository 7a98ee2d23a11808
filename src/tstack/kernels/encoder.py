"""Integer-only inference of a BERT-family encoder (post-LN BERT: BertModel, MiniLM, …), I-BERT style.

Layout per layer, as `transformers`' IBertModel: int8 activations (per-tensor scales), int8 weights per output
channel, int32 accumulation with a 32-bit integer bias, dyadic requantization after every matmul, i-Softmax on the
integer scores (scale S_q·S_k/√d_head), the residual added in a 22-bit requantization, i-LayerNorm on 22-bit
integers, requantization to int8. Embeddings: int8 tables summed in a 16-bit requantization, i-LayerNorm.

Difference from IBertModel: the FFN's int32 accumulator (per-channel scale) is first requantized to a per-tensor
16-bit scale and i-GELU runs on that (I-BERT runs it per channel on the accumulator); one per-tensor GELU constant
set is what a special-function unit such as Gemmini's holds.

Activation ranges are calibrated on sample inputs by running this same integer pipeline (each requantization site
takes its batch's own range while calibrating and records the running maximum); after `calibrate`, every scale is
frozen. Integer GEMMs run in float BLAS when every partial sum is an exactly representable integer (|Σ| < 2^24 in
float32, < 2^53 in float64), which gives the same integers as an int32 accumulator, faster.

Two implementations of the same integer pipeline: the reference one (`fast=False`) spells every step in int64 with
the public kernels; the fast one (default) keeps int8 activations in float32 (the GEMM operands), requantizes in
float64 where that is provably exact (`_requant`) and calls the kernels' int32 cores directly. Both give the same
integers (tests/unit/test_kernels_encoder.py, tests/integration/test_kernels_minilm.py).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tstack.errors import TstackError
from tstack.fileio import read_json
from tstack.kernels.gelu import (
    gelu_bound,
    gelu_constants,
    gelu_int32_block,
    gelu_int32_bound,
    gelu_int32_into,
    int_gelu,
)
from tstack.kernels.layernorm import ibert_layernorm_into, ibert_layernorm_shift, int_layernorm
from tstack.kernels.quant import (
    FLOAT_INT_MAGIC,
    FLOAT_INT_MAGIC_BITS,
    INT64_LIMIT,
    FloatArray,
    IntArray,
    coarsen,
    dyadic,
    for_blocks,
    int_range,
    mul_shift_ok,
    mul_shift_rhe,
    quantize,
    scratch,
    shift_round_half_even,
    symmetric_scale,
)
from tstack.kernels.softmax import ibert_exp_min_scale, ibert_softmax_into, int_softmax

#: An array of the fast path: integer values held in an integer or float dtype.
AnyArray = npt.NDArray[Any]


class ModelLoadError(TstackError):
    """A model folder cannot be read as a BERT-family encoder."""


@dataclass(frozen=True, slots=True)
class EncoderConfig:
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


@dataclass(slots=True)
class _Linear:
    w_int: FloatArray  # (in, out), integer-valued, as float for BLAS
    w_int32: npt.NDArray[np.float32]
    w_scale: FloatArray  # (out,)
    bias: FloatArray  # float (out,), quantized at run time against the input scale (32-bit, scale s_w·s_x)
    w_absmax: int
    #: max over output channels of Σ_k |w_kj|: |Σ_k a_k w_kj| ≤ max|a| · w_col_l1 for every partial sum.
    w_col_l1: int = 0


def _quant_linear(w: npt.NDArray[np.floating], b: npt.NDArray[np.floating], bits: int) -> _Linear:
    w64 = np.asarray(w, dtype=np.float64)
    s = symmetric_scale(w64.min(axis=1), w64.max(axis=1), bits)
    q = quantize(w64, s[:, None], bits)
    wt = np.ascontiguousarray(q.T.astype(np.float64))
    l1 = int(np.abs(q).sum(axis=1).max())
    return _Linear(wt, wt.astype(np.float32), s, np.asarray(b, dtype=np.float64), int(np.abs(q).max()), l1)


def common_shift_dyadic(ratio: FloatArray, mantissa_bits: int = 31) -> tuple[IntArray | np.int64, int]:
    """Per-channel ratios as integer multipliers over one shared shift: ratio_c ≈ m_c / 2^shift with the largest
    |m_c| < 2^mantissa_bits (smaller channels keep fewer bits). One shift for the whole tensor is what a
    requantization unit applies per row, and it keeps the rounding shift a scalar (fast); a per-tensor ratio is the
    31-bit dyadic of I-BERT exactly."""
    r = np.asarray(ratio, dtype=np.float64)
    if r.ndim == 0 or r.size == 1:
        d = dyadic(float(r.reshape(-1)[0]))
        return np.int64(d.multiplier), int(d.shift)
    top = float(np.abs(r).max())
    _, e = math.frexp(top)
    shift = mantissa_bits - e
    mult = np.rint(np.ldexp(r, shift)).astype(np.int64)
    return mult, shift


def _blas_threads(threads: int | None) -> contextlib.AbstractContextManager[object]:
    """Limit the BLAS pool for the integer GEMMs (None: leave it). On a shared or loaded machine a multi-threaded
    BLAS pool next to torch's OpenMP pool oversubscribes the cores and can run ten times slower; on an idle machine
    all threads are faster (all-MiniLM-L6-v2 on 2 cores: GEMMs 1.7 s with 2 threads vs 2.6 s with 1)."""
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - optional speed-up
        return contextlib.nullcontext()
    limiter: contextlib.AbstractContextManager[object] = threadpool_limits(threads, user_api="blas")
    return limiter


def int_matmul(
    a: IntArray, b: FloatArray, a_absmax: int, b_absmax: int, b32: npt.NDArray[np.float32] | None = None
) -> IntArray:
    """Exact integer a @ b (b integer-valued floats) with float32 BLAS on slices of the reduction axis short enough
    that every partial sum is an exactly representable integer (|Σ| < 2^24), summed in int64; float64 BLAS or
    int64 when the operands are too wide for that."""
    k = a.shape[-1]
    per_term = max(a_absmax, 1) * max(b_absmax, 1)
    chunk = (2**24 - 1) // per_term
    out: IntArray
    if chunk >= 1 and -(-k // chunk) <= 4:
        bf = b.astype(np.float32) if b32 is None else b32
        af = a.astype(np.float32)
        if chunk >= k:
            out = np.matmul(af, bf).astype(np.int64)
            return out
        out = np.zeros((*a.shape[:-1], b.shape[-1]), dtype=np.int64)
        for lo in range(0, k, chunk):
            out += np.matmul(af[..., lo : lo + chunk], bf[..., lo : lo + chunk, :]).astype(np.int64)
        return out
    if k * per_term < 2**53:
        out = np.matmul(a.astype(np.float64), b).astype(np.int64)
    else:
        out = np.matmul(a, b.astype(np.int64))
    return out


def exact_float_matmul(a: AnyArray, b: AnyArray, a_absmax: int, b_absmax: int, b_col_l1: int | None = None) -> AnyArray:
    """Exact a @ b for integer-valued float32 operands with |a| ≤ a_absmax, |b| ≤ b_absmax, as float32 (one slice)
    or float64: float32 BLAS over slices of the reduction axis short enough that every partial sum is an exactly
    representable integer (< 2^24), the slices summed in float64 (exact below 2^53). Operands too wide for float32
    slices run in float64 BLAS (exact below 2^53). `b_col_l1` (max over columns of Σ_k |b_kj|, for weights known
    ahead) bounds every partial sum by a_absmax · b_col_l1, usually far below K · a_absmax · b_absmax: then one
    float32 GEMM suffices where the worst case would need slices."""
    k = a.shape[-1]
    per_term = max(a_absmax, 1) * max(b_absmax, 1)
    if k * per_term >= 2**53:
        raise TstackError(f"an integer GEMM with reduction {k} and |a|, |b| ≤ {a_absmax}, {b_absmax} exceeds 2^53")
    if b_col_l1 is not None and max(a_absmax, 1) * b_col_l1 < 2**24:
        whole: AnyArray = np.matmul(a, b)
        return whole
    chunk = (2**24 - 1) // per_term
    if chunk >= k:
        out32: AnyArray = np.matmul(a, b)
        return out32
    if chunk < 1 or -(-k // chunk) > 4:
        out64: AnyArray = np.matmul(a.astype(np.float64), b.astype(np.float64))
        return out64
    total: AnyArray = np.matmul(a[..., :chunk], b[..., :chunk, :]).astype(np.float64)
    for lo in range(chunk, k, chunk):
        total += np.matmul(a[..., lo : lo + chunk], b[..., lo : lo + chunk, :])
    return total


#: Row blocks of the fast path's requantizations: about this many elements, so that their float64 and int64
#: temporaries stay in the L2 cache.
_BLOCK_ELEMENTS = 1 << 16


@dataclass(frozen=True, slots=True)
class _RequantPlan:
    """One requantization's constants: q_out = clamp(rhe(q · m / 2^s) [+ rhe(r · m_r / 2^s_r)], lo, hi) with
    per-channel m over one shift s (`common_shift_dyadic`) and an optional residual r, as `IntegerEncoder._act`.

    In float64 where provable: with the ratio m / 2^s exact in float64 and |q·m| < 2^53, q·(m/2^s) is exact and
    rint is round-half-even, as `shift_round_half_even`. Where |q·m| ≥ 2^53 the product rounds, but then
    |q·m / 2^s| ≥ 2^(53-s); when that is at least L = max|out| + 1 + max|residual term|, the exact result
    saturates, and so does the rounded one (rounding is monotonic and 2^(53-s) is representable). So the float
    path runs when L · 2^s ≤ 2^53 and the residual term is exact (|r·m_r| < 2^53). Otherwise int64 with the
    unsigned-shift rounding (`mul_shift_rhe`), or the literal reference arithmetic beyond its bounds.
    """

    lo: int
    hi: int
    mult: IntArray | np.int64
    shift: int
    m_r: int
    s_r: int
    float_path: bool
    ratio: FloatArray

    @staticmethod
    def make(ratio: FloatArray, bits: int, residual_ratio: float | None) -> _RequantPlan:
        mult, shift = common_shift_dyadic(ratio)
        lo, hi = int_range(bits)
        m_r, s_r = 0, 0
        if residual_ratio is not None:
            dr = dyadic(residual_ratio)
            m_r, s_r = int(dr.multiplier), int(dr.shift)
        # The residual's own conditions (|r·m_r| < 2^53, L including its term) are checked per block in `run`.
        ok = 1 <= shift <= 53 and max(-lo, hi) + 1 <= 2 ** (53 - shift) and -10 < s_r < 1000
        return _RequantPlan(lo, hi, mult, shift, m_r, s_r, ok, np.asarray(mult, dtype=np.float64) * 2.0**-shift)

    def run(
        self,
        q: AnyArray,
        bias: IntArray | None,
        residual: AnyArray | None,
        residual_absmax: int,
        out: AnyArray,
        q_absmax: int | None,
        consume: bool = False,
    ) -> None:
        """Requantize one block of rows q (+ bias) [+ residual] into `out` (any dtype holding [lo, hi]); with
        `consume`, an int64 q is overwritten instead of copied."""
        lo, hi = self.lo, self.hi
        size = q.size
        float_path = self.float_path
        t2_max = 0
        if residual is not None:
            if residual_absmax * abs(self.m_r) >= 2**53:
                float_path = False
            t2_max = ((residual_absmax * abs(self.m_r)) >> max(self.s_r, 0) << max(-self.s_r, 0)) + 1
            float_path = float_path and max(-lo, hi) + 1 + t2_max <= 2 ** (53 - self.shift)
        if float_path:
            w = scratch("encoder.w", np.float64, size).reshape(q.shape)
            if bias is not None:
                np.add(q, bias.astype(np.float64), out=w)
            else:
                np.copyto(w, q, casting="unsafe")
            w *= self.ratio  # an exact ratio: |m| < 2^32 times a power of two
            np.rint(w, out=w)
            if residual is not None:
                t = scratch("encoder.t", np.float64, size).reshape(q.shape)
                np.multiply(residual, np.float64(self.m_r * 2.0**-self.s_r), out=t)  # float64 scalar: f64 product
                np.rint(t, out=t)
                w += t
            if out.dtype == np.float32:
                # Saturate after the cast, on half the bytes: values beyond 2^24 round in float32 but stay beyond
                # the bounds, so the clamp gives the same integers.
                np.copyto(out, w, casting="unsafe")
                np.clip(out, lo, hi, out=out)
            else:
                np.clip(w, lo, hi, out=w)
                np.copyto(out, w, casting="unsafe")
            return
        # int64: the exact integers q + bias.
        if q.dtype.kind == "f":
            w = scratch("encoder.w", np.float64, size).reshape(q.shape)
            np.add(q, np.float64(FLOAT_INT_MAGIC), out=w)  # a float64 scalar: a float64 sum, exact below 2^51
            a = w.view(np.int64)
            a -= FLOAT_INT_MAGIC_BITS
        elif consume and q.dtype == np.int64:
            a = q
        else:
            a = scratch("encoder.a", np.int64, size).reshape(q.shape)
            np.copyto(a, q, casting="unsafe")
        if bias is not None:
            a += bias
        if q_absmax is None or bias is not None:
            q_absmax = max(-int(a.min()), int(a.max())) if a.size else 0
        if mul_shift_ok(q_absmax, self.mult, self.shift):
            acc = mul_shift_rhe(a, self.mult, self.shift, q_absmax, inplace=True)
        else:
            acc = shift_round_half_even(a * self.mult, self.shift)
        # |acc| ≤ ⌈q_absmax · max|m| / 2^shift⌉ (+ the residual term's bound): int32 when that fits.
        m_max = int(np.abs(np.asarray(self.mult, dtype=np.int64)).max(initial=0))
        acc_bound = ((q_absmax * m_max) >> max(self.shift, 0) << max(-self.shift, 0)) + 1
        if residual is not None:
            r = residual.astype(np.int64)
            if mul_shift_ok(residual_absmax, self.m_r, self.s_r):
                acc += mul_shift_rhe(r, self.m_r, self.s_r, residual_absmax, inplace=True)
            else:
                acc += shift_round_half_even(r * self.m_r, self.s_r)
            acc_bound += t2_max
        if acc_bound < 2**31:
            acc32 = scratch("encoder.acc32", np.int32, size).reshape(q.shape)
            np.copyto(acc32, acc, casting="unsafe")  # int64 → float32 has no AVX2 instruction; int32 → float32 has
            np.clip(acc32, lo, hi, out=acc32)
            np.copyto(out, acc32, casting="unsafe")
        else:
            np.clip(acc, lo, hi, out=acc)
            np.copyto(out, acc, casting="unsafe")


@dataclass(slots=True)
class _Site:
    """One requantization site: the calibrated symmetric range and its bit width."""

    bits: int
    absmax: float = 0.0

    @property
    def scale(self) -> float:
        return float(symmetric_scale(-self.absmax, self.absmax, self.bits))


@dataclass(slots=True)
class IntegerEncoder:
    """An integer-only BERT-family encoder built from float weights; `calibrate`, then `forward` or `embed`."""

    config: EncoderConfig
    bits: BitWidths
    word: IntArray
    word_scale: float
    position: IntArray
    position_scale: float
    token_type: IntArray
    token_type_scale: float
    ln_params: dict[str, tuple[FloatArray, FloatArray]]
    linears: dict[str, _Linear]
    sites: dict[str, _Site] = field(default_factory=dict)
    ln_shift: dict[str, int] = field(default_factory=dict)
    calibrating: bool = False
    calibrated: bool = False
    #: BLAS threads for the integer GEMMs (None: the BLAS default); 1 is robust on shared machines.
    blas_threads: int | None = 1
    #: The fast implementation (see the module docstring); False runs the literal int64 reference pipeline.
    fast: bool = True

    # -- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, npt.NDArray[np.floating]], config: EncoderConfig, bits: BitWidths | None = None
    ) -> IntegerEncoder:
        """From a BertModel state dict of numpy arrays (keys as `BertModel.state_dict()`, an optional `bert.`
        prefix removed)."""
        bw = bits or BitWidths()
        sd = {k.removeprefix("bert."): np.asarray(v) for k, v in state.items()}

        def get(key: str) -> npt.NDArray[np.floating]:
            if key not in sd:
                raise ModelLoadError(f"weight {key!r} is missing; is this a BertModel checkpoint?")
            return sd[key]

        def table(key: str) -> tuple[IntArray, float]:
            w = np.asarray(get(key), dtype=np.float64)
            s = float(symmetric_scale(w.min(), w.max(), bw.weight))
            return quantize(w, s, bw.weight), s

        word, ws = table("embeddings.word_embeddings.weight")
        pos, ps = table("embeddings.position_embeddings.weight")
        tt, ts = table("embeddings.token_type_embeddings.weight")
        lns: dict[str, tuple[FloatArray, FloatArray]] = {}
        lins: dict[str, _Linear] = {}

        def ln(name: str, prefix: str) -> None:
            lns[name] = (
                np.asarray(get(prefix + ".weight"), dtype=np.float64),
                np.asarray(get(prefix + ".bias"), dtype=np.float64),
            )

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
        return cls(config, bw, word, ws, pos, ps, tt, ts, lns, lins)

    # -- requantization sites -----------------------------------------------------------------------------------
    def _site(self, name: str, bits: int) -> _Site:
        if name not in self.sites:
            if not self.calibrating:
                raise TstackError(f"site {name!r} was never calibrated; call calibrate() on sample inputs first")
            self.sites[name] = _Site(bits)
        return self.sites[name]

    def _act(
        self,
        name: str,
        q: IntArray,
        scale: FloatArray | float,
        bits: int,
        residual: IntArray | None = None,
        residual_scale: float | None = None,
    ) -> tuple[IntArray, float]:
        """QuantAct: dyadic requantization of q (scale per tensor or per last-axis channel) [+ residual]."""
        site = self._site(name, bits)
        if self.calibrating:
            x = q * np.asarray(scale)
            if residual is not None and residual_scale is not None:
                x = x + residual * residual_scale
            batch_max = float(np.abs(x).max()) if x.size else 0.0
            site.absmax = max(site.absmax, batch_max)
            s_out = float(symmetric_scale(-batch_max, batch_max, bits))
        else:
            s_out = site.scale
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

    def _linear(self, name: str, x: IntArray, s_x: float) -> tuple[IntArray, FloatArray]:
        lin = self.linears[name]
        s_acc = lin.w_scale * s_x
        b_int = quantize(lin.bias, s_acc, self.bits.bias)
        acc = int_matmul(x, lin.w_int, int(np.abs(x).max(initial=0)), lin.w_absmax, lin.w_int32)
        acc += b_int
        return acc, s_acc

    def _layernorm(self, name: str, q: IntArray, s: float, bits: int) -> tuple[IntArray, FloatArray]:
        if self.calibrating:
            self.ln_shift[name] = max(self.ln_shift.get(name, 0), ibert_layernorm_shift(q, bits=bits))
        elif name not in self.ln_shift:
            raise TstackError(f"LayerNorm {name!r} was never calibrated; call calibrate() first")
        w, b = self.ln_params[name]
        return int_layernorm(q, s, w, b, bits=bits, shift=self.ln_shift[name])

    # -- forward ------------------------------------------------------------------------------------------------
    def forward(self, input_ids: npt.ArrayLike, attention_mask: npt.ArrayLike | None = None) -> tuple[IntArray, float]:
        """Integer last hidden state (batch, seq, d_model) and its scale, for token ids (batch, seq)."""
        if not (self.calibrated or self.calibrating):
            raise TstackError("the encoder is not calibrated; call calibrate() on sample inputs first")
        ids = np.asarray(input_ids, dtype=np.int64)
        if ids.ndim != 2 or ids.size == 0:
            raise TstackError(f"input_ids must be a non-empty (batch, seq) array; got shape {ids.shape}")
        batch, seq = ids.shape
        cfg = self.config
        if seq > cfg.max_positions:
            raise TstackError(f"sequence length {seq} exceeds the model's {cfg.max_positions} positions; truncate")
        if ids.min() < 0 or ids.max() >= cfg.vocab:
            raise TstackError(f"token ids must lie in [0, {cfg.vocab}); got [{ids.min()}, {ids.max()}]")
        mask = np.ones((batch, seq), dtype=bool) if attention_mask is None else np.asarray(attention_mask) > 0
        with _blas_threads(self.blas_threads):
            if self.fast:
                return self._forward_fast(ids, mask)
            return self._forward(ids, mask)

    def _embedding_sum(self, ids: IntArray) -> tuple[IntArray, float]:
        """Embeddings: word + token type (0) + position, summed in 16-bit requantizations (i-LayerNorm follows)."""
        batch, seq = ids.shape
        cfg, bw = self.config, self.bits
        h, s = self._act(
            "emb.sum1",
            self.word[ids],
            self.word_scale,
            bw.embedding,
            np.broadcast_to(self.token_type[0], (batch, seq, cfg.d_model)),
            self.token_type_scale,
        )
        h, s = self._act(
            "emb.sum2", h, s, bw.embedding, np.broadcast_to(self.position[:seq], h.shape), self.position_scale
        )
        return h, s

    def _forward(self, ids: IntArray, mask: npt.NDArray[np.bool_]) -> tuple[IntArray, float]:
        cfg, bw = self.config, self.bits
        h, s = self._embedding_sum(ids)
        y, s_y = self._layernorm("emb", h, s, bw.embedding)
        h, s = self._act("emb.out", y, s_y, bw.activation)
        key_keep = mask[:, None, None, :]
        dh = cfg.d_model // cfg.heads
        for i in range(cfg.layers):
            h, s = self._layer(i, h, s, key_keep, dh)
        return h, s

    def _layer(self, i: int, h: IntArray, s: float, key_keep: npt.NDArray[np.bool_], dh: int) -> tuple[IntArray, float]:
        cfg, bw = self.config, self.bits
        batch, seq, _ = h.shape
        heads = []
        scales = []
        for name in ("q", "k", "v"):
            acc, s_acc = self._linear(f"{i}.{name}", h, s)
            t, s_t = self._act(f"{i}.{name}", acc, s_acc, bw.activation)
            heads.append(t.reshape(batch, seq, cfg.heads, dh).transpose(0, 2, 1, 3))
            scales.append(s_t)
        q8, k8, v8 = heads
        amax = 2 ** (bw.activation - 1)
        scores = int_matmul(q8, k8.transpose(0, 1, 3, 2).astype(np.float64), amax, amax)
        s_scores = scales[0] * scales[1] / math.sqrt(dh)
        scores, s_scores, _ = coarsen(scores, s_scores, ibert_exp_min_scale())
        probs, s_p = int_softmax(scores, s_scores, bits=32, output_bits=bw.activation, mask=key_keep)
        ctx = int_matmul(probs, v8.astype(np.float64), 2**bw.activation, amax)
        ctx = ctx.transpose(0, 2, 1, 3).reshape(batch, seq, cfg.d_model)
        c8, s_c = self._act(f"{i}.ctx", ctx, s_p * scales[2], bw.activation)
        acc, s_acc = self._linear(f"{i}.o", c8, s_c)
        r, s_r = self._act(f"{i}.res1", acc, s_acc, bw.layernorm_input, h, s)
        y, s_y = self._layernorm(f"{i}.ln1", r, s_r, bw.layernorm_input)
        h1, s1 = self._act(f"{i}.ln1.out", y, s_y, bw.activation)
        acc, s_acc = self._linear(f"{i}.ff1", h1, s1)
        g_in, s_g = self._act(f"{i}.gelu.in", acc, s_acc, bw.gelu_input)
        g, s_gout = int_gelu(g_in, s_g, bits=bw.gelu_input)
        g8, s_g8 = self._act(f"{i}.gelu.out", g, s_gout, bw.activation)
        acc, s_acc = self._linear(f"{i}.ff2", g8, s_g8)
        r, s_r = self._act(f"{i}.res2", acc, s_acc, bw.layernorm_input, h1, s1)
        y, s_y = self._layernorm(f"{i}.ln2", r, s_r, bw.layernorm_input)
        return self._act(f"{i}.ln2.out", y, s_y, bw.activation)

    # -- fast path ----------------------------------------------------------------------------------------------
    def _requant(
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
        """`_act` on integer-valued q (+ an integer per-channel bias): the same integers, returned as `out_dtype`,
        in cache-sized row blocks. q holds exact integers below 2^51 (GEMM results and kernel outputs do);
        `q_absmax`, when known, bounds |q| (saves two reductions on the int64 path). See `_RequantPlan`."""
        site = self._site(name, bits)
        scale_arr = np.asarray(scale, dtype=np.float64)
        if self.calibrating:
            x = q.astype(np.float64) if bias is None else q + bias.astype(np.float64)
            x *= scale_arr
            if residual is not None and residual_scale is not None:
                x += residual.astype(np.float64) * residual_scale
            batch_max = float(np.abs(x).max()) if x.size else 0.0
            site.absmax = max(site.absmax, batch_max)
            s_out = float(symmetric_scale(-batch_max, batch_max, bits))
        else:
            s_out = site.scale
        plan = _RequantPlan.make(scale_arr / s_out, bits, None if residual_scale is None else residual_scale / s_out)
        out = np.empty(q.shape, dtype=out_dtype)
        n = q.shape[-1]
        q2, out2 = q.reshape(-1, n), out.reshape(-1, n)
        r2 = None if residual is None else residual.reshape(-1, n)

        def block(a: int, b: int) -> None:
            plan.run(q2[a:b], bias, None if r2 is None else r2[a:b], residual_absmax, out2[a:b], q_absmax)

        for_blocks(q2.shape[0], max(1, _BLOCK_ELEMENTS // n), block)
        return out, s_out

    def _gelu_stage(self, i: int, acc: AnyArray, s_acc: FloatArray, b_int: IntArray) -> tuple[AnyArray, float]:
        """gelu.in requantization (16 bits), i-GELU and gelu.out requantization (8 bits) of the FFN accumulator.
        With frozen scales, fused per cache-sized row block (the 16-bit and GELU integers never leave the cache);
        while calibrating (each site needs its whole-tensor range first), stage by stage."""
        bw = self.bits
        in_name, out_name = f"{i}.gelu.in", f"{i}.gelu.out"
        if not self.calibrating and in_name in self.sites and out_name in self.sites:
            s_g = self.sites[in_name].scale
            q_absmax = 2 ** (bw.gelu_input - 1)
            g_bound = gelu_int32_bound(q_absmax, s_g)
            if gelu_bound(bw.gelu_input, s_g) <= INT64_LIMIT and g_bound < 2**31:
                b, c, one, shift, s_erf = gelu_constants(s_g)
                s_gout = -(s_g * s_erf / 2)
                s8 = self.sites[out_name].scale
                plan_in = _RequantPlan.make(np.asarray(s_acc, dtype=np.float64) / s_g, bw.gelu_input, None)
                plan_out = _RequantPlan.make(np.asarray(s_gout / s8), bw.activation, None)
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

                for_blocks(acc2.shape[0], max(1, _BLOCK_ELEMENTS // n), block)
                return out, s8
        g_in, s_g = self._requant(in_name, acc, s_acc, bw.gelu_input, bias=b_int, out_dtype=np.int32)
        g, s_gout, g_bound_or_none = self._gelu_fast(g_in, s_g, bw.gelu_input)
        return self._requant(out_name, g, s_gout, bw.activation, out_dtype=np.float32, q_absmax=g_bound_or_none)

    def _ln_fast(self, name: str, q: npt.NDArray[np.integer], s: float, bits: int) -> tuple[AnyArray, FloatArray]:
        """i-LayerNorm of `bits`-bit integers q (int64 out): the kernel's fast rows where their bounds hold (no
        input checks: q comes from a `bits`-bit requantization), else the kernel."""
        if self.calibrating:
            self.ln_shift[name] = max(self.ln_shift.get(name, 0), ibert_layernorm_shift(q, bits=bits))
        elif name not in self.ln_shift:
            raise TstackError(f"LayerNorm {name!r} was never calibrated; call calibrate() first")
        w, b = self.ln_params[name]
        shift = self.ln_shift[name]
        n = q.shape[-1]
        if not np.any(w == 0):
            res = ibert_layernorm_into(q.reshape(-1, n), shift, 2**bits - 1, 2 ** (bits - 1), w, b)
            if res is not None:
                y, s_ln = res
                return y.reshape(q.shape), s_ln * w
        return int_layernorm(q, s, w, b, bits=bits, shift=shift)

    def _gelu_fast(self, q: AnyArray, s: float, bits: int) -> tuple[AnyArray, float, int | None]:
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

    def _linear_fast(
        self, name: str, x: npt.NDArray[np.float32], s_x: float, x_absmax: int
    ) -> tuple[npt.NDArray[np.floating], FloatArray, IntArray]:
        """Exact int8 GEMM in float BLAS: (accumulator without bias, its per-channel scale, the 32-bit bias)."""
        lin = self.linears[name]
        s_acc = lin.w_scale * s_x
        b_int = quantize(lin.bias, s_acc, self.bits.bias)
        return exact_float_matmul(x, lin.w_int32, x_absmax, lin.w_absmax, lin.w_col_l1), s_acc, b_int

    def _forward_fast(self, ids: IntArray, mask: npt.NDArray[np.bool_]) -> tuple[IntArray, float]:
        batch, seq = ids.shape
        cfg, bw = self.config, self.bits
        h, s = self._embedding_sum(ids)
        y, s_y = self._ln_fast("emb", h, s, bw.embedding)
        x, s = self._requant("emb.out", y, s_y, bw.activation, out_dtype=np.float32)
        keep = None if bool(mask.all()) else np.broadcast_to(mask[:, None, None, :], (batch, cfg.heads, seq, seq))
        dh = cfg.d_model // cfg.heads
        for i in range(cfg.layers):
            x, s = self._layer_fast(i, x, s, keep, dh)
        return x.astype(np.int64), s

    def _layer_fast(
        self,
        i: int,
        h: AnyArray,
        s: float,
        keep: npt.NDArray[np.bool_] | None,
        dh: int,
    ) -> tuple[AnyArray, float]:
        """`_layer` with float32 int8 activations (see the module docstring)."""
        cfg, bw = self.config, self.bits
        batch, seq, d = h.shape
        amax = 2 ** (bw.activation - 1)
        heads = []
        scales = []
        for name in ("q", "k", "v"):
            acc, s_acc, b_int = self._linear_fast(f"{i}.{name}", h, s, amax)
            t, s_t = self._requant(f"{i}.{name}", acc, s_acc, bw.activation, bias=b_int, out_dtype=np.float32)
            heads.append(t.reshape(batch, seq, cfg.heads, dh).transpose(0, 2, 1, 3))
            scales.append(s_t)
        q8, k8, v8 = heads
        scores = exact_float_matmul(q8, k8.transpose(0, 1, 3, 2), amax, amax)
        s_scores = scales[0] * scales[1] / math.sqrt(dh)
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
        c8, s_c = self._requant(f"{i}.ctx", ctx, s_p * scales[2], bw.activation, out_dtype=np.float32)
        acc, s_acc, b_int = self._linear_fast(f"{i}.o", c8, s_c, amax)
        r, s_r = self._requant(
            f"{i}.res1",
            acc,
            s_acc,
            bw.layernorm_input,
            bias=b_int,
            residual=h,
            residual_scale=s,
            residual_absmax=amax,
            out_dtype=np.int32,
        )
        y, s_y = self._ln_fast(f"{i}.ln1", r, s_r, bw.layernorm_input)
        h1, s1 = self._requant(f"{i}.ln1.out", y, s_y, bw.activation, out_dtype=np.float32)
        acc, s_acc, b_int = self._linear_fast(f"{i}.ff1", h1, s1, amax)
        g8, s_g8 = self._gelu_stage(i, acc, s_acc, b_int)
        acc, s_acc, b_int = self._linear_fast(f"{i}.ff2", g8, s_g8, amax)
        r, s_r = self._requant(
            f"{i}.res2",
            acc,
            s_acc,
            bw.layernorm_input,
            bias=b_int,
            residual=h1,
            residual_scale=s1,
            residual_absmax=amax,
            out_dtype=np.int32,
        )
        y, s_y = self._ln_fast(f"{i}.ln2", r, s_r, bw.layernorm_input)
        return self._requant(f"{i}.ln2.out", y, s_y, bw.activation, out_dtype=np.float32)

    def calibrate(self, batches: Iterable[tuple[npt.ArrayLike, npt.ArrayLike | None]]) -> IntegerEncoder:
        """Record every activation range (max |x|) and LayerNorm pre-shift over the batches; then freeze them."""
        self.calibrating = True
        self.sites.clear()
        self.ln_shift.clear()
        n = 0
        try:
            for ids, mask in batches:
                self.forward(ids, mask)
                n += 1
        finally:
            self.calibrating = False
        if n == 0:
            raise TstackError("calibration needs at least one batch of sample text")
        self.calibrated = True
        return self

    def embed(self, input_ids: npt.ArrayLike, attention_mask: npt.ArrayLike | None = None) -> FloatArray:
        """Mean-pooled sentence embeddings (float64, dequantized at the very end) over unmasked tokens."""
        h, s = self.forward(input_ids, attention_mask)
        ids = np.asarray(input_ids)
        mask = np.ones(ids.shape) if attention_mask is None else np.asarray(attention_mask, dtype=np.float64)
        summed = (h * mask[..., None]).sum(axis=1) * s
        out: FloatArray = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return out


def load_bert(path: str | Path, bits: BitWidths | None = None) -> IntegerEncoder:
    """An IntegerEncoder from a Hugging Face BertModel folder (config.json + model.safetensors), no torch needed."""
    folder = Path(path)
    cfg_path = folder / "config.json"
    weights = folder / "model.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise ModelLoadError(f"{folder} must hold config.json and model.safetensors (a Hugging Face BertModel folder)")
    raw = read_json(cfg_path, "config", error=ModelLoadError)
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{cfg_path} must hold a JSON object of config fields, got {type(raw).__name__}")
    model_type, act = raw.get("model_type"), raw.get("hidden_act", "gelu")
    if model_type not in ("bert", "roberta", "ibert") or act != "gelu":
        raise ModelLoadError(
            f"{cfg_path}: model_type {model_type!r} with activation {act!r} is not a GELU BERT-family encoder; "
            "tstack's integer forward supports BertModel-style checkpoints"
        )
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise ModelLoadError(f"{cfg_path}: only absolute position embeddings are supported")
    try:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
    except ImportError:  # pragma: no cover - safetensors comes with transformers
        raise ModelLoadError(
            "reading model.safetensors needs the safetensors package: pip install safetensors"
        ) from None

    def field(name: str, default: int) -> int:  # transformers' BertConfig defaults, as a sparse config reads there
        value = raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 2**20:
            raise ModelLoadError(f"{cfg_path}: {name} must be a positive integer up to 2^20, got {value!r}")
        return value

    config = EncoderConfig(
        layers=field("num_hidden_layers", 12),
        d_model=field("hidden_size", 768),
        heads=field("num_attention_heads", 12),
        d_ff=field("intermediate_size", 3072),
        vocab=field("vocab_size", 30522),
        max_positions=field("max_position_embeddings", 512),
        type_vocab=field("type_vocab_size", 2),
    )
    if config.d_model % config.heads:
        raise ModelLoadError(f"{cfg_path}: hidden_size {config.d_model} is not divisible by {config.heads} heads")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot read {weights}: {' '.join(str(exc).split())[:200]}; download the checkpoint again"
        ) from None
    try:
        return IntegerEncoder.from_state_dict(state, config, bits)
    except (ValueError, IndexError) as exc:
        raise ModelLoadError(
            f"{weights} does not match {cfg_path}: {' '.join(str(exc).split())[:200]}; use the folder's own config"
        ) from None
