"""Symmetric quantization, dyadic (integer multiplier + shift) requantization and the input checks every kernel uses.

Conventions (I-BERT, `transformers.models.ibert.quant_modules`): a real tensor is x ≈ q · S with integer q and a
float scale S > 0. Only scales (offline constants) are handled in floating point; every operation on q is an integer
operation. Kernels return int64 arrays; internally they evaluate in int32 (or in float64 / uint64, on exactly
representable integers) wherever a bound, checked before computing, proves that the result is the same integer as
the literal int64 evaluation, which remains as the fallback (tests/unit/kernels/test_kernels_fast.py compares the two).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tstack.errors import TstackError
from tstack.kernels._runtime import scratch

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
SignedArray = npt.NDArray[np.signedinteger[Any]]

#: The largest magnitude an int64 intermediate may reach; kernels check their bound against it before computing.
INT64_LIMIT = 2**63 - 1


class KernelInputError(TstackError):
    """An integer kernel got a bad input: a scale ≤ 0, values outside the declared bit width, an empty axis."""


class KernelOverflowError(TstackError):
    """An integer kernel's intermediates could exceed int64 for inputs of the declared bit width and scale."""


def int_range(bits: int) -> tuple[int, int]:
    """The two's-complement range [-2^(b-1), 2^(b-1)-1] of a signed `bits`-bit integer."""
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def check_bits(bits: int, *, name: str = "bits", max_bits: int = 32) -> None:
    if not isinstance(bits, int | np.integer) or not 2 <= int(bits) <= max_bits:
        raise KernelInputError(f"{name} must be an integer in 2..{max_bits}; got {bits!r}")


def check_scale(scale: Any, *, name: str = "scale") -> FloatArray:
    """The scale as a float64 array; raises unless every entry is finite and > 0."""
    arr = np.asarray(scale, dtype=np.float64)
    if arr.ndim == 0 and math.isfinite(float(arr)) and float(arr) > 0:  # the common scalar case, without reductions
        return arr
    if arr.size == 0 or not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        bad = arr.ravel()[0] if arr.size else "an empty array"
        if arr.size:
            bad = arr.ravel()[~(np.isfinite(arr.ravel()) & (arr.ravel() > 0))][0]
        raise KernelInputError(f"{name} must be finite and > 0 (x ≈ q·scale); got {bad}")
    return arr


def check_int_array(q: Any, bits: int, *, name: str = "q") -> IntArray:
    """`q` as an int64 array; raises if it is not integer-valued or lies outside the signed `bits`-bit range."""
    arr, _, _ = checked_ints(q, bits, name=name)
    out: IntArray = arr.astype(np.int64, copy=False)
    return out


def checked_ints(q: Any, bits: int, *, name: str = "q") -> tuple[SignedArray, int, int]:
    """`q` as a signed integer array — the caller's own array, no copy, when it is int8 … int64 — and bounds
    (lo, hi) on its values; raises if it is not integer-valued or lies outside the signed `bits`-bit range.

    The bounds are the actual minimum and maximum when the dtype can hold values outside the declared range (they
    are computed for the check anyway), else the dtype's range (no pass over the data). Kernels use them to pick the
    narrowest exact integer type. Unsigned and integral float inputs are converted to int64.
    """
    check_bits(bits)
    arr = np.asarray(q)
    if arr.dtype.kind != "i":
        if arr.dtype.kind == "f":
            integral = arr.size == 0 or bool(np.all(arr == np.floor(arr)))
            if not (integral and bool(np.all(np.isfinite(arr)))):
                raise KernelInputError(f"{name} must hold integers (dtype {arr.dtype} given); quantize floats first")
        elif arr.dtype.kind != "u":
            raise KernelInputError(f"{name} must hold integers (dtype {arr.dtype} given); quantize floats first")
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > INT64_LIMIT:
            raise KernelInputError(f"{name} has values above 2^63 - 1; declare fewer bits or requantize first")
        arr = arr.astype(np.int64)
    lo, hi = int_range(bits)
    info = _iinfo(arr.dtype)
    if not arr.size:
        return arr, 0, 0
    if info.min >= lo and info.max <= hi:
        return arr, int(info.min), int(info.max)
    amin, amax = int(arr.min()), int(arr.max())
    if amin < lo or amax > hi:
        raise _range_error(name, amin, amax, bits)
    return arr, amin, amax


def _range_error(name: str, amin: int, amax: int, bits: int) -> KernelInputError:
    lo, hi = int_range(bits)
    return KernelInputError(
        f"{name} has values in [{amin}, {amax}], outside the declared {bits}-bit range [{lo}, {hi}]; "
        "declare more bits or requantize first"
    )


def check_block_range(flat: SignedArray, start: int, stop: int, bits: int, *, name: str = "q") -> None:
    """The range check of `checked_ints` on flat[start:stop] alone, for kernels that check each cache-sized block of
    a wide input just before using it; the error gives the minimum and maximum of all of `flat`, as
    `checked_ints` does."""
    lo, hi = int_range(bits)
    block = flat[start:stop]
    if int(block.min()) < lo or int(block.max()) > hi:
        raise _range_error(name, int(flat.min()), int(flat.max()), bits)


#: Elements per block of `checked_int32`: an int64 block and its int32 copy stay in a 512 KiB L2 cache.
NARROW_BLOCK = 1 << 15


def checked_int32(q: Any, bits: int, scratch_name: str, *, name: str = "q") -> tuple[SignedArray, int, int]:
    """`checked_ints`, except that a contiguous input wider than int32 comes back as an int32 copy in the
    per-thread scratch buffer `scratch_name` (exact: bits ≤ 32), for kernels that evaluate in int32 anyway.

    The range check and the narrowing run block by block, each block's minimum, maximum and copy while it is in
    cache: one read of the int64 input from memory instead of three. Raises as `checked_ints` does (the message
    gives the minimum and maximum of the whole array). The copy is only valid until the next kernel call on this
    thread; callers must not return it.
    """
    arr = np.asarray(q)
    if arr.dtype.kind != "i" or arr.dtype.itemsize <= 4 or not arr.size or not arr.flags.c_contiguous:
        return checked_ints(arr, bits, name=name)
    check_bits(bits)
    lo, hi = int_range(bits)
    flat = arr.reshape(-1)
    out = scratch(scratch_name, np.int32, flat.size)
    amin, amax = hi, lo
    for start in range(0, flat.size, NARROW_BLOCK):
        block = flat[start : start + NARROW_BLOCK]
        bmin, bmax = int(block.min()), int(block.max())
        if bmin < lo or bmax > hi:
            raise _range_error(name, int(flat.min()), int(flat.max()), bits)
        amin, amax = min(amin, bmin), max(amax, bmax)
        np.copyto(out[start : start + NARROW_BLOCK], block, casting="unsafe")
    return out.reshape(arr.shape), amin, amax


@functools.lru_cache(maxsize=16)
def _iinfo(dtype: np.dtype[Any]) -> np.iinfo[Any]:
    return np.iinfo(dtype)


def as_int32(q: SignedArray, out: npt.NDArray[np.int32] | None = None) -> npt.NDArray[np.int32]:
    """`q` (values known to fit int32) as int32: the array itself when it already is, else a narrowing copy."""
    if q.dtype == np.int32:
        same: npt.NDArray[np.int32] = q
        return same
    if out is None:
        return q.astype(np.int32)
    np.copyto(out, q, casting="unsafe")
    return out


def check_axis(q: IntArray, axis: int, *, name: str = "q") -> int:
    """The normalized reduction axis; raises if the array has no such axis or the axis is empty."""
    if q.ndim == 0:
        raise KernelInputError(f"{name} is a scalar; the kernel reduces over an axis, pass at least a 1-D array")
    if not -q.ndim <= axis < q.ndim:
        raise KernelInputError(f"axis {axis} does not exist for {name} of shape {q.shape}")
    ax = axis % q.ndim
    if q.shape[ax] == 0:
        raise KernelInputError(f"{name} of shape {q.shape} has an empty reduction axis {axis}; nothing to normalize")
    return ax


def symmetric_scale(x_min: Any, x_max: Any, bits: int) -> FloatArray:
    """I-BERT's symmetric scale max(|x_min|, |x_max|) / (2^(b-1) - 1), the range clamped at ≥ 1e-8 (per entry)."""
    check_bits(bits)
    rng = np.maximum(np.abs(np.asarray(x_min, dtype=np.float64)), np.abs(np.asarray(x_max, dtype=np.float64)))
    if not np.all(np.isfinite(rng)):
        raise KernelInputError("the calibration range must be finite; check the activations for inf/NaN")
    n = 2 ** (bits - 1) - 1
    out: FloatArray = np.maximum(rng, 1e-8) / n
    return out


def quantize(x: Any, scale: Any, bits: int) -> IntArray:
    """Float → integer: round-half-even(x · (1/scale)) clamped to I-BERT's [-(2^(b-1)-1), 2^(b-1)-2] (as the reference).

    `scale` broadcasts against `x` (a per-output-channel weight scale has shape (out, 1)).
    """
    check_bits(bits)
    s = check_scale(scale)
    xf = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(xf)):
        raise KernelInputError("cannot quantize inf or NaN; check the input tensor")
    n = 2 ** (bits - 1) - 1
    q = np.rint((1.0 / s) * xf)
    out: IntArray = np.clip(q, -n, n - 1).astype(np.int64)
    return out


def dequantize(q: Any, scale: Any) -> FloatArray:
    """Integer → float: q · scale in float64."""
    out: FloatArray = np.asarray(q, dtype=np.float64) * np.asarray(scale, dtype=np.float64)
    return out


@dataclass(frozen=True, slots=True)
class Dyadic:
    """A ratio r ≈ multiplier / 2^shift (integer multiplier, integer shift ≥ 0); arrays for per-channel ratios."""

    multiplier: IntArray
    shift: IntArray

    def __hash__(self) -> int:
        return hash((self.multiplier.tobytes(), self.shift.tobytes(), self.multiplier.shape))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Dyadic)
            and np.array_equal(self.multiplier, other.multiplier)
            and np.array_equal(self.shift, other.shift)
        )

    @property
    def value(self) -> FloatArray:
        out: FloatArray = self.multiplier.astype(np.float64) / np.exp2(self.shift.astype(np.float64))
        return out


def dyadic(ratio: Any, mantissa_bits: int = 31) -> Dyadic:
    """Decompose a ratio as I-BERT's `batch_frexp` does: ratio = m·2^k (m in [0.5, 1)), multiplier =
    round-half-away-from-zero(m · 2^mantissa_bits), shift = mantissa_bits - k. A zero ratio gives multiplier 0."""
    if not 1 <= mantissa_bits <= 62:
        raise KernelInputError(f"mantissa_bits must be in 1..62; got {mantissa_bits}")
    r = np.asarray(ratio, dtype=np.float64)
    if not np.all(np.isfinite(r)):
        raise KernelInputError("a requantization ratio must be finite; check the scales")
    m, e = np.frexp(r)
    # m * 2^bits is exact in float64 (a power-of-two scaling), so the half-away rounding below is exact too.
    scaled = np.ldexp(m, mantissa_bits)
    mult = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    shift = mantissa_bits - e.astype(np.int64)
    return Dyadic(mult.astype(np.int64), np.asarray(shift, dtype=np.int64))


def shift_round_half_even(x: IntArray, shift: Any) -> IntArray:
    """round-half-even(x / 2^shift) for int64 x (|x| < 2^62) and integer shifts (arrays broadcast; a shift ≤ 0
    multiplies by 2^-shift; a shift > 62 gives 0).

    One add and two shifts: ⌊(x + 2^(s-1) - 1 + bit_s(x)) / 2^s⌋, where bit_s(x) = ⌊x / 2^s⌋ mod 2 breaks a tie
    toward the even quotient, as torch.round does on exact values.
    """
    s = np.asarray(shift, dtype=np.int64)
    if s.ndim == 0:
        k = int(s)
        if k <= 0:
            left: IntArray = x << np.int64(-k)
            return left
        if k > 62:
            return np.zeros(np.shape(x), dtype=np.int64)
        out = x >> np.int64(k)
        out &= 1
        out += x
        out += np.int64((1 << (k - 1)) - 1)
        out >>= np.int64(k)
        return out
    pos = np.clip(s, 1, 62)
    res = (x + ((np.int64(1) << (pos - 1)) - 1) + ((x >> pos) & 1)) >> pos
    if np.any(s <= 0) or np.any(s > 62):
        res = np.where(s <= 0, x << np.clip(-s, 0, 62), np.where(s > 62, 0, res))
    result: IntArray = np.asarray(res, dtype=np.int64)
    return result


#: Adding 1.5·2^52 to an integer-valued float64 |v| < 2^51 lands in [2^52, 2^53), where the spacing is 1: the bits
#: of the sum, read as int64, are FLOAT_INT_MAGIC_BITS + v exactly. A float64 → int64 conversion in two vectorized
#: passes; numpy's own cast is scalar code on AVX2 (about 4x slower than an add).
FLOAT_INT_MAGIC = 1.5 * 2**52
FLOAT_INT_MAGIC_BITS = int(np.float64(FLOAT_INT_MAGIC).view(np.int64))

#: 2^63 as a wrapped int64. Adding it maps signed order onto unsigned order (x + 2^63 ≥ 0 as uint64), so that a
#: floor shift can be a logical uint64 shift: numpy vectorizes those (AVX2 has no 64-bit arithmetic shift; a signed
#: int64 `>>` runs element by element, about 5x slower than an int64 add).
_UNSIGNED_BIAS = -(2**63)
#: |x| < 2^62 keeps x + 2^63 + 2^(s-1) below 2^64: the biased sum cannot wrap.
MUL_SHIFT_LIMIT = 2**62


def _v2(values: Any) -> int:
    """The largest power of two dividing any nonzero entry (0 when all are 0): bounds where a product can tie."""
    a = np.abs(np.asarray(values, dtype=np.int64))
    lowest_bit = int(np.bitwise_and(a, -a).max(initial=0))  # the max of powers of two is the largest of them
    return max(lowest_bit.bit_length() - 1, 0)


def mul_shift_rhe(q: SignedArray, multiplier: Any, shift: Any, q_absmax: int, *, inplace: bool = False) -> IntArray:
    """round-half-even(q · multiplier / 2^shift), exactly, as an int64 array: `shift_round_half_even(q * m, s)`
    without its signed 64-bit shifts. A new array, or q itself (overwritten) with `inplace` and an int64 q.

    `multiplier` and `shift` broadcast against q (per-channel ratios along the last axis); every shift must lie in
    1..62 and q_absmax · |multiplier| < 2^62 (`mul_shift_ok`). When no product can be a tie — a tie needs
    v2(q·m) = shift - 1, and v2(q·m) ≤ bits(q_absmax) - 1 + v2(m) — the rounding is ⌊(x + 2^(s-1)) / 2^s⌋: one add
    and one shift; otherwise the tie-breaking bit is added as in `shift_round_half_even`.
    """
    m = np.asarray(multiplier, dtype=np.int64)
    acc: IntArray
    if inplace and q.dtype == np.int64:
        acc = q
        acc *= m
    else:
        acc = np.multiply(q, m, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    u = acc.view(np.uint64)
    scalar = s.ndim == 0
    s_u: Any = np.uint64(int(s)) if scalar else s.astype(np.uint64)
    half: Any = (1 << (int(s) - 1)) if scalar else np.left_shift(np.int64(1), s - 1)
    if int(q_absmax).bit_length() + _v2(multiplier) < int(s.min()):
        acc += half + _UNSIGNED_BIAS if scalar else half + np.int64(_UNSIGNED_BIAS)
    else:
        acc += _UNSIGNED_BIAS
        bit = np.right_shift(u, s_u)
        bit &= np.uint64(1)
        acc += bit.view(np.int64)
        acc += half - 1
    np.right_shift(u, s_u, out=u)
    acc -= (1 << (63 - int(s))) if scalar else np.left_shift(np.int64(1), 63 - s)
    return acc


def mul_shift_ok(q_absmax: int, multiplier: Any, shift: Any) -> bool:
    """Whether `mul_shift_rhe` applies: shifts in 1..62 and |q · multiplier| < 2^62."""
    s = np.asarray(shift)
    m_max = int(np.abs(np.asarray(multiplier, dtype=np.int64)).max(initial=0))
    return bool(s.size) and int(s.min()) >= 1 and int(s.max()) <= 62 and int(q_absmax) * m_max < MUL_SHIFT_LIMIT


def requantize(
    q: Any,
    scale_in: Any,
    scale_out: float,
    bits: int,
    *,
    in_bits: int = 32,
    residual: Any = None,
    residual_scale: Any = None,
    residual_bits: int = 32,
) -> IntArray:
    """Dyadic requantization (I-BERT's `QuantAct` with `FixedPointMul`), integer only at run time.

    q_out = clamp(rhe(q · m / 2^e) [+ rhe(r · m_r / 2^e_r)], -2^(b-1), 2^(b-1)-1) where m / 2^e is the 31-bit dyadic
    of scale_in / scale_out (rhe = round half to even) and r an optional residual with its own scale. `scale_in`
    may be per-channel (broadcast along the last axis). Bit-exact with the reference while |q · m| < 2^53 (|q| < 2^22),
    beyond which the float64 reference itself rounds.
    """
    check_bits(bits)
    so = float(check_scale(scale_out, name="scale_out"))
    si = check_scale(scale_in, name="scale_in")
    qi, q_lo, q_hi = checked_ints(q, in_bits)
    d = dyadic(si / so)
    out = _mul_shift(qi, max(-q_lo, q_hi), d)
    if residual is not None:
        if residual_scale is None:
            raise KernelInputError("a residual needs its residual_scale")
        ri, r_lo, r_hi = checked_ints(residual, residual_bits, name="residual")
        rs = check_scale(residual_scale, name="residual_scale")
        dr = dyadic(rs / so)
        out += _mul_shift(ri, max(-r_lo, r_hi), dr)
    lo, hi = int_range(bits)
    np.clip(out, lo, hi, out=out)
    return out


def _mul_shift(q: SignedArray, q_absmax: int, d: Dyadic) -> IntArray:
    """shift_round_half_even(q · m, e) for the dyadic m / 2^e: `mul_shift_rhe` where it applies."""
    if mul_shift_ok(q_absmax, d.multiplier, d.shift):
        return mul_shift_rhe(q, d.multiplier, d.shift, q_absmax)
    return shift_round_half_even(q.astype(np.int64) * d.multiplier, d.shift)


def requantize_dyadic(q: IntArray, d: Dyadic, bits: int) -> IntArray:
    """Apply a precomputed dyadic ratio and saturate to `bits` (the run-time half of `requantize`, no checks)."""
    lo, hi = int_range(bits)
    out: IntArray = np.clip(shift_round_half_even(q * d.multiplier, d.shift), lo, hi)
    return out


def float32_scale(scale: float) -> float:
    """The scale as the reference's `FixedPointMul` sees the output scale: rounded to float32."""
    return float(np.float32(scale))


def bit_length(value: int) -> int:
    return int(abs(int(value))).bit_length()


def ceil_log2(value: float) -> int:
    return max(0, math.ceil(math.log2(value))) if value > 1 else 0


def coarsen(q: IntArray, scale: float, min_scale: float) -> tuple[IntArray, float, int]:
    """Drop low bits (floor shift) until scale ≥ min_scale: (q >> k, scale · 2^k, k). Exact integer operation."""
    if scale >= min_scale:
        return q, scale, 0
    k = math.ceil(math.log2(min_scale / scale))
    return q >> k, scale * 2**k, k
