"""Exact integer GEMMs in float BLAS: every partial sum an exactly representable integer (|Σ| < 2^24 in float32,
< 2^53 in float64), so the result is the integer an int32 accumulator would hold, computed faster."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tstack.errors import TstackError
from tstack.kernels.quant import FloatArray, IntArray

#: An array of the fast path: integer values held in an integer or float dtype.
AnyArray = npt.NDArray[Any]


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
