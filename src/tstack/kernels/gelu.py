"""Integer-only GELU (I-BERT's i-GELU): GELU(x) = x/2 · (1 + erf(x/√2)), erf by a clipped second-order polynomial.

erf(x) ≈ sgn(x) · [a · (min(|x|, -b) + b)^2 + 1], a = -0.2888, b = -1.769. Two variants:

* ``ibert`` — `transformers.models.ibert.quant_modules.IntGELU`: √2 taken as 1.4142, constants floored, the
  polynomial right-shifted by 14 bits (the reference's overflow guard). Bit-exact with the reference.
* ``gemmini`` — Gemmini's accumulator read-out path (`AccumulatorScale.igelu`, `gemmini.h`): √2 exact, constants
  truncated toward zero (C casts), no 14-bit shift.

The reference returns a *negative* output scale (a < 0). tstack returns the negated integers with the positive
scale, which denotes exactly the same real values.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tstack.kernels._runtime import constant_scratch, for_blocks, scratch
from tstack.kernels.quant import (
    INT64_LIMIT,
    FloatArray,
    IntArray,
    KernelInputError,
    KernelOverflowError,
    SignedArray,
    as_int32,
    check_bits,
    check_block_range,
    check_scale,
    checked_ints,
)

GELU_A = -0.2888
GELU_B = -1.769
IBERT_SQRT2 = 1.4142
IBERT_GELU_SHIFT = 14
BLOCK_ELEMENTS = 1 << 16

Variant = Literal["ibert", "gemmini"]


@functools.lru_cache(maxsize=256)
def gelu_constants(scale: float, variant: Variant = "ibert") -> tuple[int, int, int, int, float]:
    """(b_int, c_int, one_int, poly_shift, s_erf) for an input scale: offline constants of the kernel."""
    if variant == "ibert":
        s_in = scale / IBERT_SQRT2
        b_int = math.floor(GELU_B / s_in)
        c_int = math.floor((1 / GELU_A) / s_in**2)
        s_erf = s_in**2 * GELU_A * 2**IBERT_GELU_SHIFT
        one_int = int(float(np.floor_divide(1.0, s_erf)))
        return b_int, c_int, one_int, IBERT_GELU_SHIFT, s_erf
    if variant == "gemmini":
        s_in = scale / math.sqrt(2.0)
        s_erf = GELU_A * s_in**2
        return int(GELU_B / s_in), int(1 / s_erf), int(1 / s_erf), 0, s_erf
    raise KernelInputError(f"unknown variant {variant!r}; use 'ibert' or 'gemmini'")


def gelu_bound(bits: int, scale: float, variant: Variant = "ibert") -> int:
    """An upper bound on |intermediate| over every `bits`-bit input at this scale (Python ints, exact)."""
    b_int, c_int, one_int, shift, _ = gelu_constants(scale, variant)
    poly = max(b_int * b_int + abs(c_int), abs(c_int))
    y = (poly >> shift) + 1
    return max((1 << (bits - 1)) * (y + abs(one_int)), poly)


def gelu_safe_pre_shift(bits: int, scale: float, variant: Variant = "ibert") -> int:
    """The smallest right shift of the input after which `int_gelu` cannot overflow int64."""
    for k in range(bits):
        if gelu_bound(bits - k, scale * 2**k, variant) <= INT64_LIMIT:
            return k
    return bits - 1


def gelu_int32_bound(q_absmax: int, scale: float, variant: Variant = "ibert") -> int:
    """An upper bound on |intermediate| of the int32 evaluation (`_gelu_int32`) for |q| ≤ q_absmax (exact ints).

    Its intermediates are P = (min(|q|, -b) + b)² + c, P - 1 ± 1, the shifted polynomial plus 1 - one, and the
    output q · (…); `gelu_bound` bounds the same quantities with one unit less slack.
    """
    b_int, c_int, one_int, shift, _ = gelu_constants(scale, variant)
    poly = max(b_int * b_int + abs(c_int), abs(c_int)) + 2
    return max(q_absmax * ((poly >> shift) + 2 + abs(one_int)), poly)


def int_gelu(
    q: object, scale: float, *, bits: int = 32, variant: Variant = "ibert", pre_shift: int = 0
) -> tuple[IntArray, float]:
    """i-GELU of x ≈ q·scale; returns (q_out, scale_out) with scale_out > 0.

    `bits` declares the input width (I-BERT feeds the int32 accumulator of the FFN matmul). `pre_shift` first
    floors q / 2^pre_shift (coarser input, larger scale) so that fine scales fit int64; see `gelu_safe_pre_shift`.
    Raises KernelOverflowError, before computing, when an input of the declared width could overflow int64.
    Any signed integer dtype is accepted without a copy; the result is int64.
    """
    check_bits(bits)
    s = float(check_scale(scale))
    arr = np.asarray(q)
    if (
        not pre_shift
        and variant in ("ibert", "gemmini")
        and arr.dtype.kind == "i"
        and arr.dtype.itemsize > 4
        and arr.size
        and arr.flags.c_contiguous
        and gelu_bound(bits, s, variant) <= INT64_LIMIT
        and gelu_int32_bound(2 ** (bits - 1), s, variant) < 2**31
    ):
        # The declared width alone proves the int32 evaluation exact: each cache-sized block of the int64 input is
        # range-checked, narrowed and evaluated while in cache (one read of it from memory instead of three).
        b_int, c_int, one_int, shift, s_erf = gelu_constants(s, variant)
        flat = arr.reshape(-1)
        out: IntArray = np.empty(arr.shape, dtype=np.int64)
        o = out.reshape(-1)

        def block(a: int, z: int) -> None:
            check_block_range(flat, a, z, bits)
            gelu_int32_block(flat[a:z], b_int, c_int, one_int, shift, o[a:z])

        for_blocks(flat.size, BLOCK_ELEMENTS, block)
        return out, -(s * s_erf / 2)
    qi, lo, hi = checked_ints(arr, bits)
    if pre_shift < 0 or pre_shift >= bits:
        raise KernelInputError(f"pre_shift must be in 0..{bits - 1}; got {pre_shift}")
    if pre_shift:
        qi = qi >> pre_shift
        lo, hi = lo >> pre_shift, hi >> pre_shift
        s = s * 2**pre_shift
        bits = bits - pre_shift
    if gelu_bound(bits, s, variant) > INT64_LIMIT:
        k = gelu_safe_pre_shift(bits, s, variant)
        raise KernelOverflowError(
            f"i-GELU of {bits}-bit inputs at scale {s:.3g} could overflow int64; pass pre_shift={k} "
            "(or a coarser scale)"
        )
    b_int, c_int, one_int, shift, s_erf = gelu_constants(s, variant)
    out = np.empty(qi.shape, dtype=np.int64)
    q_absmax = max(-lo, hi)
    if gelu_int32_bound(q_absmax, s, variant) < 2**31 and q_absmax < 2**31:
        # Every intermediate fits int32 for the inputs actually present (the common 16-bit case): same integers,
        # twice the SIMD lanes of int64.
        gelu_int32_into(qi.reshape(-1), b_int, c_int, one_int, shift, out.reshape(-1))
    else:
        flat = qi.reshape(-1).astype(np.int64, copy=False)
        o = out.reshape(-1)
        for_blocks(
            flat.size,
            BLOCK_ELEMENTS,
            lambda a, b: _gelu_block(flat[a:b], np.int64, b_int, c_int, one_int, shift, o[a:b]),
        )
    s_out = s * s_erf / 2
    # s_erf < 0 (a < 0): negate both so that the returned scale is positive.
    return out, -s_out


def gelu_int32_into(q: SignedArray, b_int: int, c_int: int, one_int: int, shift: int, out: npt.NDArray[Any]) -> None:
    """i-GELU of a flat array whose every intermediate fits int32 (`gelu_int32_bound` < 2^31), into `out` (flat,
    int64 for the public kernel; float64, exact, for the integer encoder).

    tstack's output is -q · (y + one) with y = ⌊sgn(q) · P / 2^shift⌋ and P = (min(|q|, -b) + b)² + c. With
    m = q >> 31 (-1 where q < 0, else 0), y = ((P + m) >> shift) ^ m: for q ≥ 0 it is ⌊P / 2^shift⌋; for q < 0 it is
    ~⌊(P - 1) / 2^shift⌋ = -⌈P / 2^shift⌉ = ⌊-P / 2^shift⌋. The sign costs three passes instead of four, and
    -(y + one) one (a reversed subtract) instead of two: eleven int32 passes and a widening copy, in cache-sized
    blocks.
    """

    for_blocks(
        q.size,
        BLOCK_ELEMENTS,
        lambda a, b: gelu_int32_block(q[a:b], b_int, c_int, one_int, shift, out[a:b]),
    )


def gelu_int32_block(q: SignedArray, b_int: int, c_int: int, one_int: int, shift: int, out: npt.NDArray[Any]) -> None:
    """One cache-sized block of `gelu_int32_into`, in the calling thread (its buffers are per thread)."""
    k = q.size
    x = as_int32(q, scratch("gelu.x", np.int32, k))
    m = scratch("gelu.m", np.int32, k)
    v = scratch("gelu.v", np.int32, k)
    np.right_shift(x, 31, out=m)
    np.abs(x, out=v)
    np.minimum(v, constant_scratch("gelu.cap", np.int32, k, -b_int), out=v)
    v += b_int
    v *= v
    v += c_int
    v += m
    if shift:
        v >>= shift
    v ^= m
    np.subtract(-one_int, v, out=v)
    v *= x
    np.copyto(out, v)


def _gelu_block(
    qd: npt.NDArray[np.signedinteger[Any]],
    dtype: type[np.signedinteger[Any]],
    b_int: int,
    c_int: int,
    one_int: int,
    shift: int,
    out: IntArray,
) -> None:
    """The int64 evaluation (inputs whose intermediates may exceed int32), literally as the reference computes."""
    erf_int = np.abs(qd)
    np.minimum(erf_int, dtype(-b_int), out=erf_int)
    erf_int += dtype(b_int)
    erf_int *= erf_int
    erf_int += dtype(c_int)
    # sgn(q)·y as (y ^ m) - m with m = q >> (width - 1) ∈ {0, -1}; q = 0 keeps +y, harmless since the output is
    # then q·(…) = 0.
    m = np.right_shift(qd, 8 * np.dtype(dtype).itemsize - 1)
    erf_int ^= m
    erf_int -= m
    if shift:
        erf_int >>= shift
    # The reference's scale is negative (a < 0); -(y + one) gives the same reals with a positive scale.
    erf_int += dtype(one_int)
    np.negative(erf_int, out=erf_int)
    np.multiply(erf_int, qd, out=out, dtype=np.int64)


def erf_float(x: object) -> FloatArray:
    """erf in float64, vectorized (Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7: far below the kernels' 1e-2 floor)."""
    xf = np.asarray(x, dtype=np.float64)
    t = 1.0 / (1.0 + 0.3275911 * np.abs(xf))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    out: FloatArray = np.sign(xf) * (1.0 - poly * np.exp(-xf * xf))
    return out


def gelu_float(x: object) -> FloatArray:
    """GELU (erf form) in float64, the function the kernel approximates."""
    xf = np.asarray(x, dtype=np.float64)
    out: FloatArray = 0.5 * xf * (1.0 + erf_float(xf / math.sqrt(2.0)))
    return out
