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
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tstack.kernels.quant import (
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
    checked_ints,
    for_blocks,
    scratch,
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
    qi, lo, hi = checked_ints(q, bits)
    ax = check_axis(qi, axis)
    if ax != qi.ndim - 1:
        qi = np.moveaxis(qi, ax, -1)
    n = qi.shape[-1]
    gamma = np.asarray(weight, dtype=np.float64).reshape(-1)
    beta = np.asarray(bias, dtype=np.float64).reshape(-1)
    if gamma.shape != (n,) or beta.shape != (n,):
        raise KernelInputError(f"weight and bias must have the normalized length {n}; got {gamma.shape}, {beta.shape}")
    if np.any(gamma == 0):
        raise KernelInputError("a LayerNorm weight is 0: the integer kernel folds β/γ into the bias; perturb it")
    if variant == "ibert":
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
        s = float(np.sqrt(np.float32(n))) / 2**30  # float32 sqrt, as the reference
        bias_int = np.floor((beta / gamma) / s)
        spread, q_absmax = hi - lo, max(-lo, hi)  # |q - mean| ≤ spread: the mean lies in [lo, hi]
        ln_shift = shift

        def block(start: int, stop: int) -> None:
            if not _ibert_rows_fast(q2[start:stop], ln_shift, spread, q_absmax, bias_int, out2[start:stop]):
                rows64 = q2[start:stop].astype(np.int64, copy=False)
                out2[start:stop] = _ibert_rows(rows64, ln_shift) + bias_int.astype(np.int64)

        for_blocks(q2.shape[0], max(1, BLOCK_ELEMENTS // n), block)  # cache-sized row blocks
        out = out2.reshape(qi.shape)
        if ax != qi.ndim - 1:
            out = np.moveaxis(out, -1, ax)
        return out, s * gamma
    elif variant == "gemmini":
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
    scale_out: FloatArray = s * gamma
    return out, scale_out


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
    q_absmax |q|. No input checks: for the integer encoder."""
    rows, n = q.shape
    s = float(np.sqrt(np.float32(n))) / 2**30
    bias_int = np.floor((bias / weight) / s)
    out = np.empty((rows, n), dtype=np.int64)
    done = for_blocks(
        rows,
        max(1, BLOCK_ELEMENTS // n),
        lambda a, b: _ibert_rows_fast(q[a:b], shift, spread, q_absmax, bias_int, out[a:b]),
    )
    return (out, s) if all(done) else None


def _ibert_rows_fast(
    q: npt.NDArray[Any], shift: int, spread: int, q_absmax: int, bias_int: FloatArray, out: IntArray
) -> bool:
    """I-BERT normalization plus bias of a block of rows into int64 `out`, in int32 and exact float64 / int64; False
    (nothing written) where its bounds do not hold and the literal int64 path must run. `spread` ≥ max(q) - min(q),
    q_absmax ≥ |q|.

    * Σq in int32 while n · q_absmax < 2^31; the mean rhe(Σq / n) as rint of the float64 quotient: a quotient that
      is a half-integer is exact in float64, any other lies ≥ 1/(2n) from one, far beyond its rounding error
      (|Σq| < 2^53, n < 2^21).
    * y = q - mean fits int32 (spread < 2^31). Σ (y >> shift)² in int32 while it provably stays below 2^31, else in
      float64 below 2^52 (every partial sum an exact integer); ⌊√var⌋ from the float64 root, exact below 2^52.
    * ⌊y · factor / 2⌋ + bias = ⌊(y · factor + 2·bias) / 2⌋ in int64 while |y · factor| + 2|bias| < 2^62: the sum
      is offset by 2^62 (to a non-negative value) so that the halving is a logical uint64 shift (vectorized; a signed
      one is not), then the offset's 2^61 is taken back.
    """
    rows, n = q.shape
    if spread >= 2**31 or q_absmax >= 2**31 or n >= 2**21:
        return False
    if rows == 0:
        return True
    size = rows * n
    x = as_int32(q, scratch("layernorm.x", np.int32, size).reshape(rows, n))
    total = x.sum(axis=-1, dtype=np.int32 if n * q_absmax < 2**31 else np.int64)
    mean = np.rint(total / n).astype(np.int32)
    y = scratch("layernorm.y", np.int32, size).reshape(rows, n)
    np.subtract(x, mean[:, None], out=y)
    ys = scratch("layernorm.ys", np.int32, size).reshape(rows, n)
    src = y
    if shift:
        np.right_shift(y, shift, out=ys)
        src = ys
    ys_max = (spread >> shift) + 1
    chunk = _int32_sum_chunk(n, ys_max * ys_max)
    if chunk:
        # Squares in int32, summed in int32 over slices of the row short enough to stay below 2^31, then in int64.
        np.multiply(src, src, out=ys)
        partial = ys.reshape(rows, n // chunk, chunk).sum(axis=-1, dtype=np.int32)
        var = partial.sum(axis=-1, dtype=np.int64)
    elif n * ys_max * ys_max < 2**52:
        ysf = scratch("layernorm.ysf", np.float64, size).reshape(rows, n)
        np.copyto(ysf, src)
        var = np.einsum("ij,ij->i", ysf, ysf).astype(np.int64)
    else:
        return False
    # var < 2^52: float64 holds it exactly and ⌊√var⌋ of the rounded root is exact (k² - 1 lies 1/(2k) > ulp below k).
    std = np.floor(np.sqrt(var.astype(np.float64))).astype(np.int64) << shift
    # The reference divides by zero on a constant row (NaN out); a unit std gives the exact answer 0 + β.
    np.maximum(std, 1, out=std)
    factor = (np.int64(1) << 31) // std
    if spread * int(factor.max()) + 2 * math.ceil(_abs_max(bias_int)) >= 2**62:
        return False
    np.copyto(out, y)
    out *= factor[:, None]
    # y·factor + 2·bias + 2^62 lies in (0, 2^63): no wrap (numpy's vector add with wrapping operands is ~4x slower).
    out += 2 * bias_int.astype(np.int64) + 2**62
    out_u = out.view(np.uint64)
    out_u >>= np.uint64(1)
    out -= 2**61
    return True


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


def _abs_max(values: FloatArray) -> float:
    return max(-float(values.min()), float(values.max())) if values.size else 0.0


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
