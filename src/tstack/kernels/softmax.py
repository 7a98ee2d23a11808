"""Integer-only exp and Softmax (I-BERT's i-exp): exp(x̃) = 2^-z · exp(p), x̃ = -ln2·z + p, p ∈ (-ln2, 0].

exp(p) ≈ 0.3585 · (p + 1.353)^2 + 0.344 (a second-order polynomial). Two variants:

* ``ibert`` — `transformers.models.ibert.quant_modules.IntSoftmax`: z by integer division by floor(-0.6931/S), the
  polynomial scaled by 2^(30-z), requantized to 16 bits (the reference's `QuantAct(16)`), then the row sum, the
  factor floor(2^32 / sum) and a right shift to `output_bits` (scale 2^-output_bits). Bit-exact with the reference
  after its one calibration call (whose range is always that of the row maximum, exp(0)).
* ``gemmini`` — Gemmini's C reference / Aug-2022 RTL: z = (-x · ⌊65536 / qln2⌋) >> 16, the polynomial right-shifted
  by z, and the sum's reciprocal applied as the hardware does, with a float32 multiplier (`MulRecFN`), to int8 with
  scale 1/127.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tstack.kernels._runtime import constant_scratch, for_blocks, scratch
from tstack.kernels.quant import (
    Dyadic,
    FloatArray,
    IntArray,
    KernelInputError,
    KernelOverflowError,
    SignedArray,
    check_axis,
    check_bits,
    check_int_array,
    check_scale,
    checked_ints,
    dyadic,
    float32_scale,
    shift_round_half_even,
)

Variant = Literal["ibert", "gemmini"]

# The reference stores the polynomial expanded: a·x² + b·x + c, and divides b and c by a.
EXP_COEF = (0.35815147, 0.96963238, 1.0)
LN2_IBERT = -0.6931
EXP_SHIFT = 30  # the reference's `const`: the exp integer is scaled by 2^30 and very negative inputs clamp at 30·ln2
SUM_BITS = 32  # the reference's `max_bit`
BLOCK_ELEMENTS = 1 << 16

GEMMINI_LN2 = 0.693147
GEMMINI_A, GEMMINI_B, GEMMINI_C = 0.3585, 1.353, 0.344


def ibert_exp_min_scale() -> float:
    """The finest input scale the I-BERT i-exp handles in int64 (its exp integer c_int·2^30 must stay < 2^62)."""
    return math.sqrt((EXP_COEF[2] / EXP_COEF[0]) / 2.0 ** (62 - EXP_SHIFT)) * (1 + 1e-9)


def exp_constants(scale: float) -> tuple[int, int, int, float]:
    """(x0_int, b_int, c_int, s_poly) of the I-BERT i-exp at this input scale (offline constants)."""
    x0_int = math.floor(LN2_IBERT / scale)
    b_int = math.floor((EXP_COEF[1] / EXP_COEF[0]) / scale)
    c_int = math.floor((EXP_COEF[2] / EXP_COEF[0]) / scale**2)
    return x0_int, b_int, c_int, EXP_COEF[0] * scale**2


def _check_exp_scale(scale: float) -> None:
    x0_int, _, c_int, _ = exp_constants(scale)
    if x0_int >= 0 or x0_int > -2:
        raise KernelInputError(f"scale {scale:.3g} is too coarse for i-exp (ln2/scale < 2); use a scale below 0.3")
    if c_int.bit_length() + EXP_SHIFT > 62:
        raise KernelOverflowError(
            f"i-exp at scale {scale:.3g} would need {c_int.bit_length() + EXP_SHIFT} bits; requantize the scores "
            f"to a scale ≥ {ibert_exp_min_scale():.3g} first (see tstack.kernels.quant.coarsen)"
        )


def _ibert_poly(x: IntArray, scale: float) -> tuple[IntArray, IntArray, FloatArray | float]:
    """For x ≤ 0: (polynomial integer, z, polynomial scale); exp(x·S) ≈ poly · 2^-z · s_poly."""
    x0_int, b_int, c_int, s_poly = exp_constants(scale)
    x = np.maximum(x, EXP_SHIFT * x0_int)
    # z = ⌊x / x0⌋ = ⌊|x| / |x0|⌋ (both ≤ 0) by an exact multiply-and-shift (division by an invariant integer,
    # Granlund & Montgomery 1994): m = ⌈2^k / d⌉ with k = bits(|x|max) + bits(d) is exact for 0 ≤ n < 2^bits(|x|max).
    d = -x0_int
    n_bits = (EXP_SHIFT * d).bit_length()
    k = n_bits + d.bit_length()
    m = -(-(1 << k) // d)
    z = np.negative(x)
    z *= m
    z >>= k
    r = x - x0_int * z
    poly = (r + b_int) * r + c_int
    return poly, z, s_poly


def int_exp(q: object, scale: float, *, bits: int = 32, variant: Variant = "ibert") -> tuple[IntArray, float]:
    """i-exp of x ≈ q·scale for q ≤ 0: (e, s_e) with exp(x) ≈ e · s_e.

    The I-BERT variant returns the reference's exp integer (poly · 2^(30-z), scale a·S²/2^30); the Gemmini variant
    (poly >> z, scale a·S²).
    """
    check_bits(bits)
    s = float(check_scale(scale))
    qi = check_int_array(q, bits)
    if qi.size and int(qi.max()) > 0:
        raise KernelInputError("i-exp takes x ≤ 0 (subtract the row maximum first); got a positive input")
    if variant == "ibert":
        _check_exp_scale(s)
        poly, z, s_poly = _ibert_poly(qi, s)
        e = np.maximum(poly << (EXP_SHIFT - z), 0)
        return e, float(s_poly) / 2**EXP_SHIFT
    if variant == "gemmini":
        e, s_e = _gemmini_exp(qi, s)
        return e, s_e
    raise KernelInputError(f"unknown variant {variant!r}; use 'ibert' or 'gemmini'")


GEMMINI_MAX_QLN2 = 2**12


def gemmini_exp_min_scale() -> float:
    """The finest scale for Gemmini's i-exp: beyond ln2/2^12, ⌊65536 / qln2⌋ is too coarse for z (z·qln2/2^16 ≥ 1)."""
    return GEMMINI_LN2 / GEMMINI_MAX_QLN2


def _gemmini_exp(x: IntArray, scale: float) -> tuple[IntArray, float]:
    qln2 = int(GEMMINI_LN2 / scale)
    if qln2 < 2:
        raise KernelInputError(f"scale {scale:.3g} is too coarse for Gemmini's i-exp (ln2/scale < 2); use < 0.3")
    if qln2 > GEMMINI_MAX_QLN2:
        raise KernelInputError(
            f"scale {scale:.3g} is too fine for Gemmini's 16-bit ln2 reciprocal; coarsen the input to a scale ≥ "
            f"{gemmini_exp_min_scale():.3g} first (tstack.kernels.quant.coarsen)"
        )
    qln2_inv = 65536 // qln2
    qb = int(GEMMINI_B / scale)
    qc = int(GEMMINI_C / (GEMMINI_A * scale**2))
    z = (-x * qln2_inv) >> 16
    qp = x + z * qln2
    poly = (qp + qb) * (qp + qb) + qc
    e = poly >> np.minimum(z, 62)
    return e, GEMMINI_A * scale**2


def ibert_exp_requant(scale: float, exp_bits: int = 16) -> Dyadic:
    """The 16-bit requantization of the reference's exp integers, as one high-precision dyadic on the polynomial.

    The reference calibrates `QuantAct(16)` on the exp integers; their maximum is always exp(0) = c_int·2^30, so
    its range is [min - 1e-5, c_int·2^30 + 1e-5] whatever the data. It then multiplies by the 31-bit dyadic of
    s_e / float32(range / (2^15 - 1)) after dividing by s_e. This returns that effective ratio times 2^30 (it is
    applied to the polynomial before the 2^-z shift) with as many mantissa bits as keep poly · multiplier < 2^62.
    """
    _, _, c_int, s_poly = exp_constants(scale)
    s_e = s_poly / 2**EXP_SHIFT
    act_scale = max(c_int * 2**EXP_SHIFT + 1e-5, 1e-8) / (2 ** (exp_bits - 1) - 1)
    d31 = dyadic(s_e / float32_scale(act_scale))
    ratio = float(d31.multiplier) / 2.0 ** float(d31.shift) / s_e * 2**EXP_SHIFT
    mantissa = max(1, 62 - c_int.bit_length())
    return dyadic(ratio, mantissa_bits=mantissa)


@dataclass(frozen=True, slots=True)
class _IbertPlan:
    """Offline constants of the I-BERT Softmax fast path at one input scale (see `_ibert_rows_fast`)."""

    x0_int: int
    b_int: int
    c_int: int
    multiplier: int  # the 16-bit requantization's dyadic, applied to the polynomial
    shift: int
    z_multiplier: int  # z = ((-x) · z_multiplier) >> z_shift in int32; 0: z by float32 division instead
    z_shift: int
    poly_int32: bool  # the polynomial's intermediates fit int32
    poly_clamp: bool  # the polynomial can be negative somewhere on (x0, 0] (the reference clamps at 0)
    exp_clamp: bool  # the 16-bit exp can exceed 2^15 - 1 (QuantAct's saturation)
    masked_exp: bool  # an entry set to the clamp 30·x0 still has a nonzero exp (so masked entries need zeroing)


@functools.lru_cache(maxsize=256)
def _ibert_plan(scale: float) -> _IbertPlan | None:
    """The fast path's constants at this scale, or None where one of its exactness conditions fails (the general
    int64 path then runs). Each condition is checked here, once, in Python integers:

    * x = q - max is clamped to [30·x0, 0], so |x| ≤ N = 30·|x0|; z = ⌊x / x0⌋ ∈ [0, 30] and r = x - x0·z ∈ (x0, 0].
      z is an int32 multiply-and-shift where one exists that is exact on [0, N] (m = ⌈2^k / d⌉ with
      (m·d - 2^k)·N < 2^k, Granlund & Montgomery 1994) and N·m < 2^31; else ⌊float32(x) / x0⌋, exact while
      N < 2^24 (x exact) and d = |x0| < 2^20 (a non-integer quotient below 32 is ≥ 1/d < ulp/2 away from the next
      integer, so rounding cannot reach it).
    * The 16-bit exp is rhe(poly · M / 2^(S + z)). The product A = poly · M < 2^62 by construction (its mantissa
      is sized so). A tie needs v2(A) = S + z - 1 ≥ S - 1, impossible when bits(poly_max) + v2(M) < S; without
      ties rhe(A / 2^T) = ⌊(⌊A / 2^(S-1)⌋ / 2^z + 1) / 2⌋, and ⌊A / 2^(S-1)⌋ < 2^31 is checked.
    """
    x0_int, b_int, c_int, _ = exp_constants(scale)
    d = -x0_int
    d_req = ibert_exp_requant(scale)
    mult, shift = int(d_req.multiplier), int(d_req.shift)
    if d < 2 or mult <= 0 or shift < 1:
        return None
    n_max = EXP_SHIFT * d
    # The polynomial (r + b)·r + c on the integers r ∈ [-(d-1), 0]: convex, so its extremes lie at the ends or at
    # the integers next to the vertex -b/2.
    rs = {-(d - 1), 0} | {min(0, max(-(d - 1), v)) for v in ((-b_int) // 2, -(b_int // 2))}
    polys = [(r + b_int) * r + c_int for r in rs]
    p_min, p_max = min(polys), max(max(polys), 0)
    if p_max * mult >= 2**62 or p_max.bit_length() + _v2_int(mult) >= shift:
        return None
    b_max = (p_max * mult) >> (shift - 1)
    if b_max >= 2**31:
        return None
    z_mult, z_shift = 0, 0
    for k in range(1, 31):
        m = -(-(1 << k) // d)
        if (m * d - (1 << k)) * n_max < (1 << k) and n_max * m < 2**31:
            z_mult, z_shift = m, k
            break
    if not z_mult and (n_max >= 2**24 or d >= 2**20):
        return None
    poly_int32 = (abs(b_int) + d) * d + abs(c_int) < 2**31
    masked = ((((c_int * mult) >> (shift - 1)) >> EXP_SHIFT) + 1) >> 1
    return _IbertPlan(
        x0_int,
        b_int,
        c_int,
        mult,
        shift,
        z_mult,
        z_shift,
        poly_int32,
        p_min < 0,
        (b_max + 1) >> 1 > 2**15 - 1,
        masked != 0,
    )


def _v2_int(v: int) -> int:
    return (abs(v) & -abs(v)).bit_length() - 1 if v else 0


def int_softmax(
    q: object,
    scale: float,
    *,
    bits: int = 32,
    axis: int = -1,
    output_bits: int = 8,
    variant: Variant = "ibert",
    mask: npt.NDArray[np.bool_] | None = None,
) -> tuple[IntArray, float]:
    """i-Softmax of x ≈ q·scale along `axis`; returns (p_int, s_out), p ≈ p_int · s_out.

    `mask` (broadcastable to q, True = keep) drops entries, e.g. padding keys: they get probability exactly 0 and
    take no part in the maximum. Every row must keep at least one entry. Any signed integer dtype is accepted
    without a copy; the result is int64.
    """
    check_bits(bits)
    check_bits(output_bits, name="output_bits", max_bits=16)
    s = float(check_scale(scale))
    qi, lo, hi = checked_ints(q, bits)
    ax = check_axis(qi, axis)
    if variant not in ("ibert", "gemmini"):
        raise KernelInputError(f"unknown variant {variant!r}; use 'ibert' or 'gemmini'")
    keep = None
    if mask is not None:
        keep = np.broadcast_to(np.asarray(mask, dtype=bool), qi.shape)
        if not np.all(keep.any(axis=ax)):
            raise KernelInputError("mask removes every entry of some row; keep at least one key per query")
        keep = np.moveaxis(keep, ax, -1)
    if variant == "ibert":
        _check_exp_scale(s)
    else:
        _gemmini_exp(np.zeros(1, dtype=np.int64), s)  # validates the scale
    rows_q = qi if ax == qi.ndim - 1 else np.moveaxis(qi, ax, -1)
    shape = rows_q.shape
    n = shape[-1]
    q2 = rows_q.reshape(-1, n)
    k2 = None if keep is None else keep.reshape(-1, n)
    out = np.empty(q2.shape, dtype=np.int64)
    plan = _ibert_plan(s) if variant == "ibert" else None
    if plan is not None and hi - lo >= 2**31:
        lo, hi = int(q2.min()), int(q2.max())  # bounds were the dtype's; the int32 path needs the real spread
    # Blocks of rows sized to the cache: the temporaries stay in L2 and are recycled.
    step = max(1, BLOCK_ELEMENTS // n)
    fast_plan = plan if plan is not None and hi - lo < 2**31 else None

    def block(start: int, stop: int) -> None:
        k_blk = None if k2 is None else k2[start:stop]
        if fast_plan is not None:
            _ibert_rows_fast(q2[start:stop], k_blk, fast_plan, output_bits, out[start:stop])
        else:
            q_blk = q2[start:stop].astype(np.int64, copy=False)
            out[start:stop] = _softmax_rows(q_blk, k_blk, s, bits, output_bits, variant)

    for_blocks(q2.shape[0], step, block)
    s_out = 1.0 / 2**output_bits if variant == "ibert" else 1.0 / (2 ** (output_bits - 1) - 1)
    out_rows = out.reshape(shape)
    return (out_rows if ax == qi.ndim - 1 else np.moveaxis(out_rows, -1, ax)), s_out


def ibert_softmax_into(
    q: SignedArray, scale: float, output_bits: int, out: npt.NDArray[Any], mask: npt.NDArray[np.bool_] | None = None
) -> bool:
    """The I-BERT i-Softmax of already validated rows q (rows, n) — int32, or int64 within int32 — written into
    `out` (rows, n) of any numeric dtype (the results are ≤ 2^output_bits); `mask` (rows, n) or None. Returns False,
    writing nothing, where the fast path's conditions do not hold (callers then use `int_softmax`). No input checks:
    for callers that know their bounds, e.g. the integer encoder."""
    plan = _ibert_plan(scale)
    if plan is None:
        return False
    rows, n = q.shape

    def block(start: int, stop: int) -> None:
        keep = None if mask is None else mask[start:stop]
        _ibert_rows_fast(q[start:stop], keep, plan, output_bits, out[start:stop])

    for_blocks(rows, max(1, BLOCK_ELEMENTS // n), block)
    return True


def _ibert_rows_fast(
    q: SignedArray,
    keep: npt.NDArray[np.bool_] | None,
    plan: _IbertPlan,
    output_bits: int,
    out: npt.NDArray[Any],
) -> None:
    """I-BERT i-Softmax of a block of rows (last axis) into `out`, in int32 except one int64 product: the same
    integers as `_softmax_rows` under the conditions `_ibert_plan` checked, and the spread max(q) - min(q) < 2^31
    (so that q - max fits int32)."""
    rows, n = q.shape
    size = rows * n

    def buf(name: str, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
        return scratch("softmax." + name, dtype, size).reshape(rows, n)

    if keep is None:
        row_max = q.max(axis=-1, keepdims=True)
    else:
        row_max = np.max(q, axis=-1, keepdims=True, where=keep, initial=np.iinfo(q.dtype).min)
    x = buf("x", np.int32)
    if q.dtype == np.int32:
        np.subtract(q, row_max, out=x)
    else:
        np.copyto(x, q, casting="unsafe")  # |q| < 2^31 (≤ 32 bits declared)
        x -= row_max.astype(np.int32)
    # An array operand for the bound: numpy's SIMD loop (a scalar bound takes a path about 3x slower).
    lower = constant_scratch("softmax.floor", np.int32, size, EXP_SHIFT * plan.x0_int).reshape(rows, n)
    np.maximum(x, lower, out=x)
    drop = None
    if keep is not None:
        drop = ~keep
        np.copyto(x, EXP_SHIFT * plan.x0_int, where=drop)  # z = 30, r = 0: a finite exp, zeroed below if nonzero
    z = buf("z", np.int32)
    if plan.z_multiplier:
        np.multiply(x, -plan.z_multiplier, out=z)
        z >>= plan.z_shift
    else:
        xf = buf("xf", np.float32)
        np.copyto(xf, x, casting="unsafe")
        xf /= np.float32(plan.x0_int)
        np.floor(xf, out=xf)
        np.copyto(z, xf, casting="unsafe")
    r = buf("r", np.int32)
    np.multiply(z, -plan.x0_int, out=r)
    r += x  # r = x - x0·z ∈ (x0, 0]
    acc = buf("acc", np.int64)
    if plan.poly_int32:
        poly = x  # x is dead from here: reuse its buffer
        np.add(r, plan.b_int, out=poly)
        poly *= r
        poly += plan.c_int
        if plan.poly_clamp:
            np.maximum(poly, 0, out=poly)
        np.copyto(acc, poly)
    else:
        r64 = buf("r64", np.int64)
        np.copyto(r64, r)
        np.add(r64, plan.b_int, out=acc)
        acc *= r64
        acc += plan.c_int
        if plan.poly_clamp:
            np.maximum(acc, 0, out=acc)
    acc *= plan.multiplier
    # acc ≥ 0: a logical uint64 shift is the floor shift, and numpy vectorizes it (a signed one it does not).
    acc_u = acc.view(np.uint64)
    acc_u >>= np.uint64(plan.shift - 1)
    e = r  # r is dead: reuse its buffer
    np.copyto(e, acc_u, casting="unsafe")  # < 2^31 (checked by the plan)
    np.right_shift(e, z, out=e)
    e += 1
    e >>= 1
    if plan.exp_clamp:
        np.minimum(e, 2**15 - 1, out=e)
    if drop is not None and plan.masked_exp:
        np.copyto(e, 0, where=drop)
    # Each e < 2^15: an int32 sum is exact up to 65538 entries per row, and twice as fast as widening.
    total = e.sum(axis=-1, keepdims=True, dtype=np.int32 if n <= 65538 else np.int64).astype(np.int64)
    factor = (np.int64(1) << SUM_BITS) // total
    prod = out if out.dtype == np.int64 else acc
    np.copyto(prod, e)
    prod *= factor  # ≤ 2^32: e ≤ total
    prod_u = prod.view(np.uint64)
    prod_u >>= np.uint64(SUM_BITS - output_bits)
    if prod is not out:
        np.copyto(out, prod, casting="unsafe")  # ≤ 2^output_bits: exact in any numeric dtype


def _softmax_rows(
    q: IntArray, keep: npt.NDArray[np.bool_] | None, s: float, bits: int, output_bits: int, variant: str
) -> IntArray:
    """i-Softmax of independent rows (the last axis) of a 2-D block."""
    if keep is not None:
        row_max = np.where(keep, q, np.int64(-(2 ** (bits - 1)))).max(axis=-1, keepdims=True)
    else:
        row_max = q.max(axis=-1, keepdims=True)
    # Dropped entries may exceed the kept maximum; clamp them so their (discarded) exp stays in range.
    x = np.minimum(q - row_max, 0)
    if variant == "ibert":
        poly, z, _ = _ibert_poly(x, s)
        np.maximum(poly, 0, out=poly)
        d = ibert_exp_requant(s)
        poly *= d.multiplier
        z += d.shift
        e16 = shift_round_half_even(poly, z)
        np.minimum(e16, 2**15 - 1, out=e16)
        if keep is not None:
            e16[~keep] = 0
        total = e16.sum(axis=-1, keepdims=True)
        factor = (np.int64(1) << SUM_BITS) // total
        e16 *= factor
        e16 >>= SUM_BITS - output_bits
        return e16
    e, _ = _gemmini_exp(x, s)
    if keep is not None:
        e[~keep] = 0
    total = e.sum(axis=-1, keepdims=True)
    hi = 2 ** (output_bits - 1) - 1
    factor = np.float32(hi) / total.astype(np.float32)
    p = np.rint(e.astype(np.float32) * factor)
    out: IntArray = np.clip(p, -hi - 1, hi).astype(np.int64)
    return out


def softmax_float(x: object, axis: int = -1) -> FloatArray:
    xf = np.asarray(x, dtype=np.float64)
    e = np.exp(xf - xf.max(axis=axis, keepdims=True))
    out: FloatArray = e / e.sum(axis=axis, keepdims=True)
    return out
