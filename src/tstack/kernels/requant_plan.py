"""One requantization site of the fast encoder pipeline, planned once and run on cache-sized row blocks.

The constants (per-channel integer multipliers over one shared shift) are those of the reference pipeline's
requantization; `RequantPlan.run` gives the same integers in float64 where that is provably exact, else in int64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tstack.kernels._runtime import scratch
from tstack.kernels.gemm import AnyArray
from tstack.kernels.quant import (
    FLOAT_INT_MAGIC,
    FLOAT_INT_MAGIC_BITS,
    FloatArray,
    IntArray,
    dyadic,
    int_range,
    mul_shift_ok,
    mul_shift_rhe,
    shift_round_half_even,
)


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


#: Row blocks of the fast path's requantizations: about this many elements, so that their float64 and int64
#: temporaries stay in the L2 cache.
BLOCK_ELEMENTS = 1 << 16


@dataclass(frozen=True, slots=True)
class RequantPlan:
    """One requantization's constants: q_out = clamp(rhe(q · m / 2^s) [+ rhe(r · m_r / 2^s_r)], lo, hi) with
    per-channel m over one shift s (`common_shift_dyadic`) and an optional residual r, as the reference
    pipeline's `act`.

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
    def make(ratio: FloatArray, bits: int, residual_ratio: float | None) -> RequantPlan:
        mult, shift = common_shift_dyadic(ratio)
        lo, hi = int_range(bits)
        m_r, s_r = 0, 0
        if residual_ratio is not None:
            dr = dyadic(residual_ratio)
            m_r, s_r = int(dr.multiplier), int(dr.shift)
        # The residual's own conditions (|r·m_r| < 2^53, L including its term) are checked per block in `run`.
        ok = 1 <= shift <= 53 and max(-lo, hi) + 1 <= 2 ** (53 - shift) and -10 < s_r < 1000
        return RequantPlan(lo, hi, mult, shift, m_r, s_r, ok, np.asarray(mult, dtype=np.float64) * 2.0**-shift)

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
