"""Integer square root (Newton) and integer-only LayerNorm (I-BERT's i-LayerNorm).

* ``ibert`` — `transformers.models.ibert.quant_modules.IntLayerNorm`: mean = round(Σq / n), y = q - mean,
  var = Σ ⌊y / 2^shift⌋², std = isqrt(var) · 2^shift, factor = ⌊2^31 / std⌋, out = ⌊y · factor / 2⌋ + ⌊(β/γ) / S⌋
  with S = √n / 2^30 (√n in float32, as the reference) and a per-channel output scale S·γ. The variance is not
  divided by n; the √n in the scale compensates. The reference takes ⌊sqrt⌋ in floating point; tstack's Newton
  iteration gives the same integer (exact for var < 2^52; `shift` keeps var < 2^32).
* ``gemmini`` — Gemmini's C reference: mean = Σq / n and var = Σ(q - mean)² / n truncated, std = isqrt(var) (1 if
  0), out = round-half-even((q - mean) · 2^frac_bits / std), then the same per-channel affine as above with
  S = 2^-frac_bits (the hardware multiplies by a float32 1/std; here an exact integer division).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tstack.kernels._runtime import for_blocks, scratch
from tstack.kernels.quant import (
    FLOAT_INT_MAGIC,
    FLOAT_INT_MAGIC_BITS,
    INT64_LIMIT,
    FloatArray,
    IntArray,
    KernelInputError,
    KernelOverflowError,
    as_int32,
    check_axis,
    check_bits,
    check_int_array,
    check_scale,
    checked_int32,
    checked_ints,
)

Variant = Literal["ibert", "gemmini"]
VAR_BITS = 32  # the reference's max_bit: the shift keeps Σ y² below 2^32
BLOCK_ELEMENTS = 1 << 17


def newton_iterations(max_bits: int) -> int:
    """Newton iterations `isqrt` needs, at most, for inputs below 2^max_bits (from 2^⌈bits/2⌉, quadratic)."""
    return max(1, math.ceil(math.log2(max(max_bits, 2)))) + 2


def isqrt(n: object) -> IntArray:
    """⌊√n⌋ of a non-negative int64 array by Newton's iteration x ← ⌊(x + ⌊n/x⌋)/2⌋ from x₀ = 2^⌈bits(n)/2⌉.

    All lanes iterate together until none decreases (x₀ ≥ √n, so the iterates decrease monotonically to ⌊√n⌋).
    """
    return isqrt_with_iterations(n)[0]


def isqrt_with_iterations(n: object) -> tuple[IntArray, int]:
    """`isqrt` and the number of Newton updates the slowest lane needed (the hardware's iteration count)."""
    arr = np.asarray(n)
    if arr.dtype.kind not in "iu":
        raise KernelInputError(f"isqrt takes integers; got dtype {arr.dtype}")
    v = arr.astype(np.int64)
    if v.size and int(v.min()) < 0:
        raise KernelInputError("isqrt of a negative number; the variance must be ≥ 0")
    # float64's exponent gives bit_length (rounding can only overestimate it, which keeps x₀ ≥ √n).
    _, exp = np.frexp(v.astype(np.float64))
    x = np.left_shift(np.int64(1), np.clip((exp.astype(np.int64) + 1) // 2, 0, 62))
    pos = v > 0
    safe_v = np.where(pos, v, 0)
    iterations = 0
    for _ in range(64):
        x_next = np.maximum((x + safe_v // x) >> 1, 1)
        dec = x_next < x
        if not np.any(dec):
            break
        iterations += 1
        x = np.where(dec, x_next, x)
    out: IntArray = np.where(pos, x, 0)
    return out, iterations


def div_round_half_even(a: IntArray, b: IntArray | int) -> IntArray:
    """round-half-even(a / b) for b > 0, exactly in integers."""
    q, r = np.divmod(a, b)
    twice = 2 * r
    up = (twice > b) | ((twice == b) & ((q & 1) == 1))
    out: IntArray = q + up.astype(np.int64)
    return out


def ibert_layernorm_shift(q: object, *, bits: int = 22, axis: int = -1) -> int:
    """The power-of-two pre-shift the reference's calibration sets for these inputs: ⌈log2 √(max var / 2^32)⌉ ≥ 0."""
    qi = check_int_array(q, bits)
    ax = check_axis(qi, axis)
    n = qi.shape[ax]
    mean = div_round_half_even(qi.sum(axis=ax, keepdims=True), n)
    y = (qi - mean).astype(np.float64)
    # A calibration decision, taken in float64 as the reference does (the exact sum could overflow int64).
    var_max = float((y * y).sum(axis=ax).max())
    if var_max < 2**VAR_BITS:
        return 0
    return max(0, math.ceil(math.log2(math.sqrt(var_max / 2**VAR_BITS))))


def int_layernorm(
    q: object,
    scale: float,
    weight: object,
    bias: object,
    *,
    bits: int = 22,
    axis: int = -1,
    shift: int | None = None,
    variant: Variant = "ibert",
    frac_bits: int = 5,
) -> tuple[IntArray, FloatArray]:
    """i-LayerNorm of x ≈ q·scale over `axis` (the hidden dimension, last by default) with affine γ = weight,
    β = bias (float, length n). Returns (q_out, per-channel scale of shape (n,)).

    The input `scale` cancels in normalization and only its validity is checked. `shift` (I-BERT only) is the
    calibrated pre-shift; None computes the smallest one that keeps Σ y² < 2^32 for this input.
    """
    check_bits(bits)
    check_scale(scale)
    # I-BERT's rows run in int32: an int64 input is range-checked and narrowed in one pass over it.
    qi, lo, hi = checked_int32(q, bits, "layernorm.q32") if variant == "ibert" else checked_ints(q, bits)
    ax = check_axis(qi, axis)
    if ax != qi.ndim - 1:
        qi = np.moveaxis(qi, ax, -1)
    n = qi.shape[-1]
    gamma = np.asarray(weight, dtype=np.float64).reshape(-1)
    beta = np.asarray(bias, dtype=np.float64).reshape(-1)
    if gamma.shape != (n,) or beta.shape != (n,):
        raise KernelInputError(f"weight and bias must have the normalized length {n}; got {gamma.shape}, {beta.shape}")
    if variant == "ibert":
        # Offline constants (β/γ folded into an integer bias, the output scale), computed once per weight and bias.
        gamma_bytes, beta_bytes = gamma.tobytes(), beta.tobytes()
        bias_int, scale_out, s = _ibert_affine(gamma_bytes, beta_bytes)
        if shift is None:
            shift = ibert_layernorm_shift(qi, bits=bits)
        if shift < 0:
            raise KernelInputError(f"shift must be ≥ 0; got {shift}")
        y_max = 2**bits  # |q - mean| < 2^bits
        if n * (y_max >> shift) ** 2 > INT64_LIMIT or y_max * 2**31 > INT64_LIMIT:
            raise KernelOverflowError(
                f"i-LayerNorm of {bits}-bit inputs over {n} channels with shift {shift} could overflow int64; "
                "requantize the input to fewer bits or pass a larger shift"
            )
        q2 = qi.reshape(-1, n)
        out2 = np.empty(q2.shape, dtype=np.int64)
        # |q - mean| ≤ spread: the mean lies in [lo, hi].
        plan = _ibert_plan(shift, hi - lo, max(-lo, hi), gamma_bytes, beta_bytes)
        ln_shift = shift

        def block(start: int, stop: int) -> None:
            if plan is not None:
                _ibert_rows_fast(q2[start:stop], plan, out2[start:stop])
            else:
                rows64 = q2[start:stop].astype(np.int64, copy=False)
                out2[start:stop] = _ibert_rows(rows64, ln_shift) + bias_int.astype(np.int64)

        for_blocks(q2.shape[0], max(1, BLOCK_ELEMENTS // n), block)  # cache-sized row blocks
        out = out2.reshape(qi.shape)
        if ax != qi.ndim - 1:
            out = np.moveaxis(out, -1, ax)
        return out, scale_out.copy()
    if np.any(gamma == 0):
        raise KernelInputError("a LayerNorm weight is 0: the integer kernel folds β/γ into the bias; perturb it")
    if variant == "gemmini":
        if not 0 <= frac_bits <= 30:
            raise KernelInputError(f"frac_bits must be in 0..30; got {frac_bits}")
        if n * 2 ** (2 * bits) > INT64_LIMIT or 2 ** (bits + frac_bits) > INT64_LIMIT:
            raise KernelOverflowError(
                f"Gemmini LayerNorm of {bits}-bit inputs over {n} channels could overflow int64; requantize the "
                "input to fewer bits first"
            )
        q64 = qi.astype(np.int64, copy=False)
        total = q64.sum(axis=-1, keepdims=True)
        mean = np.sign(total) * (np.abs(total) // n)  # C division truncates toward zero
        y = q64 - mean
        var = (y * y).sum(axis=-1, keepdims=True) // n
        std = np.maximum(isqrt(var), 1)
        out = div_round_half_even(y << frac_bits, std)
        s = 1.0 / 2**frac_bits
    else:
        raise KernelInputError(f"unknown variant {variant!r}; use 'ibert' or 'gemmini'")
    bias_int = np.floor((beta / gamma) / s).astype(np.int64)
    out += bias_int
    if ax != qi.ndim - 1:
        out = np.moveaxis(out, -1, ax)
    return out, s * gamma


def isqrt_exact(v: IntArray) -> IntArray:
    """⌊√v⌋ of int64 v ≥ 0 (v < 2^62) from the float64 root and one correction each way: the rounded root is off
    by at most one (v rounds to float64 with relative error 2^-53, the root halves it), and (x + 1)² < 2^63."""
    x: IntArray = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    x -= (x * x > v).astype(np.int64)
    x += ((x + 1) * (x + 1) <= v).astype(np.int64)
    return x


def ibert_layernorm_into(
    q: npt.NDArray[Any], shift: int, spread: int, q_absmax: int, weight: FloatArray, bias: FloatArray
) -> tuple[IntArray, float] | None:
    """I-BERT i-LayerNorm of validated rows q (rows, n) as int64, and the scalar S of the per-channel output scale
    S·γ; None where the fast path's bounds fail (callers then use `int_layernorm`). `spread` bounds max(q) - min(q),
    q_absmax |q|; no weight is 0. No input checks: for the integer encoder."""
    rows, n = q.shape
    w_bytes, b_bytes = np.asarray(weight, dtype=np.float64).tobytes(), np.asarray(bias, dtype=np.float64).tobytes()
    plan = _ibert_plan(shift, spread, q_absmax, w_bytes, b_bytes)
    if plan is None or plan.n != n:
        return None
    out = np.empty((rows, n), dtype=np.int64)
    for_blocks(rows, max(1, BLOCK_ELEMENTS // n), lambda a, z: _ibert_rows_fast(q[a:z], plan, out[a:z]))
    return out, _ibert_affine(w_bytes, b_bytes)[2]


@functools.lru_cache(maxsize=64)
def _ibert_affine(gamma_bytes: bytes, beta_bytes: bytes) -> tuple[FloatArray, FloatArray, float]:
    """(⌊(β/γ) / S⌋ as float64, the per-channel output scale S·γ, S) with S = √n / 2^30 (√n in float32, as the
    reference), from γ and β as float64 bytes; raises where a weight is 0. Cached: the arrays are read-only."""
    gamma, beta = np.frombuffer(gamma_bytes), np.frombuffer(beta_bytes)
    if np.any(gamma == 0):
        raise KernelInputError("a LayerNorm weight is 0: the integer kernel folds β/γ into the bias; perturb it")
    s = float(np.sqrt(np.float32(gamma.size))) / 2**30
    bias_int = np.floor((beta / gamma) / s)
    scale_out = s * gamma
    bias_int.flags.writeable = scale_out.flags.writeable = False
    return bias_int, scale_out, s


@dataclass(frozen=True, slots=True)
class _IbertPlan:
    """Per-call constants of `_ibert_rows_fast`, fixed by the row length, the shift, bounds on the input and β/γ.

    * sum_dtype: Σq in int32 while n · q_absmax < 2^31, else int64;
    * chunk: Σ (y >> shift)² in int32 over row slices of this length (0: in float64);
    * float_output: ⌊y · factor / 2⌋ + bias in float64 (`_output_float`), else in int64 (`_output_int64`);
    * bias_add: the per-channel term that output stage adds (bias - 1/4, or 2·bias + 2^62 as int64).
    """

    n: int
    shift: int
    sum_dtype: type[np.signedinteger[Any]]
    chunk: int
    float_output: bool
    bias_add: npt.NDArray[Any]


@functools.lru_cache(maxsize=256)
def _ibert_plan(shift: int, spread: int, q_absmax: int, gamma_bytes: bytes, beta_bytes: bytes) -> _IbertPlan | None:
    """The fast path's evaluation for rows of length n whose values lie within `spread` of each other and within
    q_absmax of 0; None where no exact int32 / float64 / int64 evaluation is proven (the literal int64 path runs).

    * The mean rhe(Σq / n) is rint of the float64 quotient: a quotient that is a half-integer is exact in float64,
      any other lies ≥ 1/(2n) from one, far beyond its rounding error (|Σq| < 2^53, n < 2^21). y = q - mean fits
      int32 (spread < 2^31).
    * var = Σ (y >> shift)² < n · ys_max² is summed in int32 slices or in float64, exact below 2^52; ⌊√var⌋ from the
      float64 root is exact there (k² - 1 lies 1/(2k) > ulp below k), and so is ⌊2^31 / std⌋ from the float64
      quotient (a non-integer quotient lies ≥ 1/std below the next integer; the rounding error is ≤ 2^-22 / std).
    * |y · factor| ≤ 2^31 · max(2, min(2^shift, spread)): |y >> shift| ≤ √var gives y in [-r·2^shift, (r+1)·2^shift)
      with r = ⌊√var⌋; for r ≥ 1, std = r·2^shift and |y| · factor ≤ 2^31 (r + 1) / r ≤ 2^32; for r = 0, std is 1
      and |y| ≤ min(2^shift, spread). The float64 output needs |y · factor / 2| + |bias| + 1 < 2^50 (`_output_float`),
      the int64 one |y · factor| + 2 |bias| < 2^62.
    """
    bias_int = _ibert_affine(gamma_bytes, beta_bytes)[0]
    n = bias_int.size
    if spread >= 2**31 or q_absmax >= 2**31 or n >= 2**21 or shift > 32:
        return None
    ys_max = (spread >> shift) + 1
    chunk = _int32_sum_chunk(n, ys_max * ys_max)
    if not chunk and n * ys_max * ys_max >= 2**52:
        return None
    yf_max = 2**31 * max(2, min(2**shift, spread))
    bias_max = math.ceil(float(np.abs(bias_int).max(initial=0.0)))
    sum_dtype = np.int32 if n * q_absmax < 2**31 else np.int64
    bias_add: npt.NDArray[Any]
    if yf_max // 2 + bias_max + 1 < 2**50:
        bias_add = bias_int - 0.25
    elif yf_max + 2 * bias_max < 2**62:
        bias_add = 2 * bias_int.astype(np.int64) + 2**62
    else:
        return None
    bias_add.flags.writeable = False
    return _IbertPlan(n, shift, sum_dtype, chunk, bias_add.dtype == np.float64, bias_add)


def _ibert_rows_fast(q: npt.NDArray[Any], plan: _IbertPlan, out: IntArray) -> None:
    """I-BERT normalization plus bias of a block of rows into int64 `out`, in int32 and exact float64 / int64, as
    `plan` (`_ibert_plan`, whose docstring gives the bounds) sets out."""
    rows, n = q.shape
    if rows == 0:
        return
    size = rows * n
    y = scratch("layernorm.y", np.int32, size).reshape(rows, n)
    ys = scratch("layernorm.ys", np.int32, size).reshape(rows, n)
    x = as_int32(q, y)
    mean = x.sum(axis=-1, dtype=plan.sum_dtype) / n
    np.rint(mean, out=mean)
    np.subtract(x, mean.astype(np.int32)[:, None], out=y)
    shift = plan.shift
    src = y
    if shift:
        np.right_shift(y, shift, out=ys)
        src = ys
    chunk = plan.chunk
    if chunk:
        # Squares in int32, summed in int32 over slices of the row short enough to stay below 2^31, then in float64
        # (exact: var < 2^52).
        np.multiply(src, src, out=ys)
        var = ys.reshape(rows, n // chunk, chunk).sum(axis=-1, dtype=np.int32).sum(axis=-1, dtype=np.float64)
    else:
        ysf = scratch("layernorm.ysf", np.float64, size).reshape(rows, n)
        np.copyto(ysf, src)
        var = np.einsum("ij,ij->i", ysf, ysf)
    root = np.sqrt(var)
    np.floor(root, out=root)
    # std = ⌊√var⌋ · 2^shift; the reference divides by zero on a constant row (NaN out), a unit std gives the exact
    # answer 0 + β. factor = ⌊2^31 / std⌋.
    root *= float(2**shift)
    np.maximum(root, 1.0, out=root)
    factor = np.divide(2.0**31, root, out=root)
    np.floor(factor, out=factor)
    if plan.float_output:
        _output_float(y, factor, plan.bias_add, out)
    else:
        _output_int64(y, factor.astype(np.int64), plan.bias_add, out)


def _output_float(y: npt.NDArray[np.int32], factor: FloatArray, bias_quarter: FloatArray, out: IntArray) -> None:
    """out = ⌊y · factor / 2⌋ + bias in float64, where every |y · factor / 2| + |bias| + 1 < 2^50; bias_quarter
    is bias - 1/4 (bias an integer-valued float64).

    y · (factor / 2) is exact (a half-integer below 2^50); adding bias - 1/4 is exact too (quarter-integers below
    2^51), and the sum is never a tie: y · factor / 2 + bias - 1/4 lies 1/4 above ⌊y · factor / 2⌋ + bias or 1/4
    below it, so rounding to the nearest integer gives the floor. Adding 1.5 · 2^52 rounds to integers (the spacing
    there is 1) and leaves FLOAT_INT_MAGIC_BITS + result as the int64 bits. Five vectorized float64 / int64 passes;
    an int64 product, a signed 64-bit shift and a float64 → int64 cast are all scalar code on AVX2.
    """
    of = out.view(np.float64)
    np.copyto(of, y)
    factor *= 0.5
    of *= factor[:, None]
    of += bias_quarter
    of += FLOAT_INT_MAGIC
    out -= FLOAT_INT_MAGIC_BITS


def _output_int64(y: npt.NDArray[np.int32], factor: IntArray, bias_add: IntArray, out: IntArray) -> None:
    """out = ⌊y · factor / 2⌋ + bias in int64, where every |y · factor| + 2 |bias| < 2^62; bias_add is 2·bias + 2^62.

    ⌊y · factor / 2⌋ + bias = ⌊(y · factor + 2·bias) / 2⌋: the sum is offset by 2^62 (to a value in (0, 2^63), no
    wrap) so that the halving is a logical uint64 shift (vectorized; a signed one is not), then the offset's 2^61
    is taken back.
    """
    np.copyto(out, y)
    out *= factor[:, None]
    out += bias_add
    out_u = out.view(np.uint64)
    out_u >>= np.uint64(1)
    out -= 2**61


@functools.lru_cache(maxsize=64)
def _int32_sum_chunk(n: int, term_max: int) -> int:
    """The longest slice length dividing n over which a sum of terms ≤ term_max stays below 2^31 (0 if none ≥ 16:
    shorter slices cost more in reduction overhead than the int32 sum saves)."""
    if term_max >= 2**31:
        return 0
    longest = min(n, (2**31 - 1) // max(term_max, 1))
    if longest >= n:
        return n
    return next((c for c in range(longest, 15, -1) if n % c == 0), 0)


def _ibert_rows(q: IntArray, shift: int) -> IntArray:
    """I-BERT's normalization of independent rows (last axis), before the bias."""
    n = q.shape[-1]
    mean = div_round_half_even(q.sum(axis=-1, keepdims=True), n)
    y = q - mean
    ys = y >> shift if shift else y
    var = np.einsum("...i,...i->...", ys, ys)[..., None]
    std = isqrt(var) << shift
    # The reference divides by zero on a constant row (NaN out); a unit std gives the exact answer 0 + β.
    np.maximum(std, 1, out=std)
    factor = (np.int64(1) << 31) // std
    y *= factor
    y >>= 1
    return y


def layernorm_float(x: object, weight: object, bias: object, eps: float = 0.0, axis: int = -1) -> FloatArray:
    xf = np.asarray(x, dtype=np.float64)
    mean = xf.mean(axis=axis, keepdims=True)
    var = ((xf - mean) ** 2).mean(axis=axis, keepdims=True)
    out: FloatArray = (xf - mean) / np.sqrt(var + eps) * np.asarray(weight) + np.asarray(bias)
    return out
