"""Integer kernels: bad-input errors, approximation floors, overflow guards, dyadic requantization, op counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tstack.errors import TstackError
from tstack.kernels import (
    KernelInputError,
    KernelOverflowError,
    dequantize,
    dyadic,
    int_exp,
    int_gelu,
    int_layernorm,
    int_softmax,
    isqrt,
    quantize,
    requantize,
    shift_round_half_even,
    symmetric_scale,
)
from tstack.kernels.accuracy import error_table, exp_error, gelu_error, layernorm_error, softmax_error
from tstack.kernels.gelu import gelu_bound, gelu_float, gelu_safe_pre_shift
from tstack.kernels.layernorm import div_round_half_even, isqrt_with_iterations, newton_iterations
from tstack.kernels.opcount import KERNELS, op_counts
from tstack.kernels.softmax import ibert_exp_min_scale, softmax_float

# -- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.0, -1e-3, float("nan"), float("inf")])
def test_bad_scale_rejected_by_every_kernel(scale: float) -> None:
    q = np.array([[1, -2, 3]])
    calls = [
        lambda: int_gelu(q, scale, bits=8),
        lambda: int_softmax(q, scale, bits=8),
        lambda: int_exp(-np.abs(q), scale, bits=8),
        lambda: int_layernorm(q, scale, np.ones(3), np.zeros(3), bits=8),
        lambda: requantize(q, scale, 0.1, 8),
        lambda: requantize(q, 0.1, scale, 8),
        lambda: quantize(np.ones(3), scale, 8),
    ]
    for call in calls:
        with pytest.raises(KernelInputError, match="scale"):
            call()


def test_errors_are_tstack_errors_with_one_line_messages() -> None:
    with pytest.raises(TstackError) as info:
        int_gelu(np.array([300]), 0.01, bits=8)
    msg = str(info.value)
    assert "\n" not in msg and "8-bit" in msg and "[-128, 127]" in msg


@pytest.mark.parametrize("bits", [4, 8, 16, 22])
def test_values_outside_declared_width_rejected(bits: int) -> None:
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    ok = np.array([lo, 0, hi])
    int_gelu(ok, 0.01, bits=bits)  # the edges are accepted
    for bad in (np.array([lo - 1]), np.array([hi + 1])):
        with pytest.raises(KernelInputError, match=f"{bits}-bit"):
            int_gelu(bad, 0.01, bits=bits)
        with pytest.raises(KernelInputError, match=f"{bits}-bit"):
            int_softmax(bad.reshape(1, 1), 0.01, bits=bits)
        with pytest.raises(KernelInputError, match=f"{bits}-bit"):
            int_layernorm(np.concatenate([bad, [0]]), 0.01, np.ones(2), np.zeros(2), bits=bits)


def test_float_arrays_must_be_integer_valued() -> None:
    with pytest.raises(KernelInputError, match="integers"):
        int_gelu(np.array([0.5]), 0.01, bits=8)
    out, _ = int_gelu(np.array([3.0]), 0.01, bits=8)  # integral floats are accepted
    assert out.dtype == np.int64


@pytest.mark.parametrize("shape", [(0,), (4, 0), (2, 3, 0)])
def test_empty_reduction_axis_rejected(shape: tuple[int, ...]) -> None:
    q = np.zeros(shape, dtype=np.int64)
    with pytest.raises(KernelInputError, match="empty reduction axis"):
        int_softmax(q, 0.01, bits=8)
    with pytest.raises(KernelInputError, match="empty reduction axis"):
        int_layernorm(q, 0.01, np.ones(0), np.zeros(0), bits=8)


def test_scalar_and_missing_axis_rejected() -> None:
    with pytest.raises(KernelInputError, match="scalar"):
        int_softmax(np.int64(3), 0.01, bits=8)
    with pytest.raises(KernelInputError, match="axis 2"):
        int_softmax(np.zeros((2, 2), dtype=np.int64), 0.01, bits=8, axis=2)


def test_layernorm_shape_and_weight_errors() -> None:
    q = np.arange(8).reshape(2, 4)
    with pytest.raises(KernelInputError, match="length 4"):
        int_layernorm(q, 0.1, np.ones(3), np.zeros(4), bits=8)
    with pytest.raises(KernelInputError, match="weight is 0"):
        int_layernorm(q, 0.1, np.array([1.0, 0.0, 1.0, 1.0]), np.zeros(4), bits=8)


def test_bad_bits_and_variant() -> None:
    with pytest.raises(KernelInputError, match="bits"):
        int_gelu(np.array([1]), 0.1, bits=1)
    with pytest.raises(KernelInputError, match="bits"):
        int_gelu(np.array([1]), 0.1, bits=65)
    with pytest.raises(KernelInputError, match="variant"):
        int_gelu(np.array([1]), 0.1, bits=8, variant="fast")  # type: ignore[arg-type]


def test_softmax_mask_must_keep_a_key() -> None:
    q = np.zeros((2, 3), dtype=np.int64)
    mask = np.array([[True, False, False], [False, False, False]])
    with pytest.raises(KernelInputError, match="mask"):
        int_softmax(q, 0.01, bits=8, mask=mask)


# -- overflow guards ------------------------------------------------------------------------------------------------


def test_gelu_overflow_raises_before_computing_and_pre_shift_fixes_it() -> None:
    bits, s = 32, 10 / 2**31
    assert gelu_bound(bits, s) > 2**63 - 1
    q = np.array([2**31 - 1, -(2**31)])
    with pytest.raises(KernelOverflowError, match="pre_shift="):
        int_gelu(q, s, bits=bits)
    k = gelu_safe_pre_shift(bits, s)
    assert gelu_bound(bits - k, s * 2**k) <= 2**63 - 1 < gelu_bound(bits - k + 1, s * 2 ** (k - 1))
    y, s_y = int_gelu(q, s, bits=bits, pre_shift=k)
    np.testing.assert_allclose(dequantize(y, s_y), gelu_float(q * s), atol=0.02)


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
def test_gelu_extremes_within_bound_are_exact_python_ints(bits: int) -> None:
    # At the declared edge the int64 result equals arbitrary-precision Python arithmetic (no silent wraparound).
    s = 12 / 2 ** (bits - 1)
    k = gelu_safe_pre_shift(bits, s)
    q = np.array([-(2 ** (bits - 1)), 2 ** (bits - 1) - 1, -1, 1, 0])
    y, _ = int_gelu(q, s, bits=bits, pre_shift=k)
    from tstack.kernels.gelu import gelu_constants

    b, c, one, shift, _ = gelu_constants(s * 2**k)
    for qq, yy in zip((q >> k).tolist(), y.tolist(), strict=True):
        sign = (qq > 0) - (qq < 0)
        erf = (sign * ((min(abs(qq), -b) + b) ** 2 + c)) >> shift
        assert yy == -(qq * (erf + one))


def test_softmax_too_fine_scale_raises_with_fix() -> None:
    s = ibert_exp_min_scale() / 4
    with pytest.raises(KernelOverflowError, match="scale"):
        int_softmax(np.array([[0, -5]]), s, bits=32)
    int_softmax(np.array([[0, -5]]), ibert_exp_min_scale(), bits=32)


def test_layernorm_overflow_guard() -> None:
    q = np.array([[2**31 - 1, -(2**31)] * 384])
    with pytest.raises(KernelOverflowError):
        int_layernorm(q, 1e-3, np.ones(768), np.zeros(768), bits=32, shift=0)
    with pytest.raises(KernelOverflowError):
        int_layernorm(q, 1e-3, np.ones(768), np.zeros(768), bits=32, variant="gemmini")


# -- approximation floors (ml-anchors.md §3.4) ----------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["ibert", "gemmini"])
@pytest.mark.parametrize("bits", [16, 20, 24, 32])
def test_gelu_floor_with_16_bit_or_wider_inputs(variant: str, bits: int) -> None:
    err = gelu_error(bits, variant, size=50_000)
    assert 0.017 < err.max_abs_error < 0.0190  # the polynomial's own L∞ on [-4, 4] is 0.01815
    assert err.mean_abs_error < 0.008


def test_gelu_8_bit_is_broken_in_the_reference_variant() -> None:
    # The reference's 2^14 overflow shift wipes out small integers (ml-anchors.md §3.4: 122 at 8 bits).
    assert gelu_error(8, "ibert", size=20_000).max_abs_error > 10


@pytest.mark.parametrize("variant", ["ibert", "gemmini"])
@pytest.mark.parametrize("bits", [12, 16, 24, 32])
def test_exp_floor_on_minus_ln2_to_zero(variant: str, bits: int) -> None:
    err = exp_error(bits, variant)
    assert 0.0015 < err.max_abs_error < 0.0025  # polynomial floor 0.0019


def test_exp_beyond_ln2_follows_powers_of_two() -> None:
    s = 2**-10
    x = -np.arange(0, 10 * 1024, 7)
    e, s_e = int_exp(x, s, bits=32)
    rel = dequantize(e, s_e) / np.exp(x * s)
    assert np.all(np.abs(rel - 1) < 0.01)


@pytest.mark.parametrize("variant", ["ibert", "gemmini"])
def test_softmax_error_16_bit(variant: str) -> None:
    err = softmax_error(16, variant)
    assert err.max_abs_error < 0.006
    assert err.mean_abs_error < 0.001


def test_softmax_rows_sum_close_to_one_and_mask_zeroes() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 3, (4, 16, 32))
    s = 2**-8
    q = np.rint(x / s).astype(np.int64)
    mask = np.ones(32, dtype=bool)
    mask[20:] = False
    p, s_p = int_softmax(q, s, bits=32, mask=mask)
    assert np.all(p[..., 20:] == 0)
    ref = softmax_float(np.where(mask, x, -np.inf))
    np.testing.assert_allclose(dequantize(p, s_p), ref, atol=0.01)
    sums = dequantize(p, s_p).sum(-1)
    assert np.all((sums > 0.85) & (sums <= 1.0))


@pytest.mark.parametrize("variant", ["ibert", "gemmini"])
def test_layernorm_error_16_bit(variant: str) -> None:
    err = layernorm_error(16, variant)
    assert err.max_abs_error < (0.001 if variant == "ibert" else 0.02)


def test_layernorm_constant_row_gives_bias() -> None:
    q = np.full((2, 8), 5)
    b = np.linspace(-1, 1, 8)
    y, s = int_layernorm(q, 0.1, np.ones(8), b, bits=8)
    np.testing.assert_allclose(dequantize(y, s), np.broadcast_to(b, (2, 8)), atol=1e-7)


def test_layernorm_reduces_along_requested_axis() -> None:
    rng = np.random.default_rng(3)
    q = rng.integers(-1000, 1000, (5, 16, 3))
    y_last, _ = int_layernorm(np.moveaxis(q, 1, -1), 1e-2, np.ones(16), np.zeros(16), bits=16)
    y_mid, _ = int_layernorm(q, 1e-2, np.ones(16), np.zeros(16), bits=16, axis=1)
    np.testing.assert_array_equal(np.moveaxis(y_last, -1, 1), y_mid)


def test_error_table_covers_every_kernel_variant_and_bits() -> None:
    rows = error_table(kernels=("exp",), bits=(8, 16), variants=("ibert",))
    assert [(r.kernel, r.variant, r.bits) for r in rows] == [("exp", "ibert", 8), ("exp", "ibert", 16)]
    with pytest.raises(KernelInputError, match="unknown kernel"):
        error_table(kernels=("tanh",))


# -- primitives -----------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**40), 2**40), st.integers(0, 40))
def test_shift_round_half_even_matches_python_round(x: int, k: int) -> None:
    got = int(shift_round_half_even(np.array([x], dtype=np.int64), k)[0])
    from fractions import Fraction

    assert got == round(Fraction(x, 2**k))


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**40), 2**40), st.integers(1, 2**20))
def test_div_round_half_even(a: int, b: int) -> None:
    from fractions import Fraction

    assert int(div_round_half_even(np.array([a]), b)[0]) == round(Fraction(a, b))


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-9, 1e9, allow_nan=False))
def test_dyadic_approximates_ratio_to_31_bits(r: float) -> None:
    d = dyadic(r)
    assert 2**30 <= int(d.multiplier) <= 2**31
    assert abs(float(d.value) / r - 1) <= 2**-31


def test_requantize_rounds_and_saturates() -> None:
    q = np.array([0, 1, 2, 3, 1000, -1000, 5])
    out = requantize(q, 1.0, 2.0, 8)
    assert out.tolist() == [0, 0, 1, 2, 127, -128, 2]  # 0.5 → 0, 1.5 → 2, 2.5 → 2 (half to even)
    with pytest.raises(KernelInputError, match="residual_scale"):
        requantize(q, 1.0, 2.0, 8, residual=q)


def test_quantize_dequantize_round_trip() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 1000)
    s = float(symmetric_scale(x.min(), x.max(), 8))
    q = quantize(x, s, 8)
    assert q.min() >= -127 and q.max() <= 126
    assert np.max(np.abs(dequantize(q, s) - x)) <= s  # half a step, or a step at the clipped top code
    with pytest.raises(KernelInputError, match="inf or NaN"):
        quantize(np.array([np.nan]), 0.1, 8)


def test_isqrt_iterations_within_count_used_by_op_counts() -> None:
    rng = np.random.default_rng(5)
    for bits in (8, 16, 32, 48, 62):
        v = rng.integers(0, 2**bits, 50_000)
        r, it = isqrt_with_iterations(v)
        assert np.all(r * r <= v) and np.all((r + 1) * (r + 1) > v)
        assert it + 1 <= newton_iterations(bits)  # + the final non-decreasing check
    with pytest.raises(KernelInputError, match="negative"):
        isqrt(np.array([-1]))


# -- op counts ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("variant", ["ibert", "gemmini"])
def test_op_counts_scale_with_row_length(kernel: str, variant: str) -> None:
    a, b = op_counts(kernel, 128, variant), op_counts(kernel, 256, variant)
    assert a.total > 0 and a.passes >= 1
    # Linear in the row length plus a per-row constant (a division, Newton steps, a reduction's n - 1).
    c = op_counts(kernel, 512, variant)
    assert c.total - b.total == 2 * (b.total - a.total)
    assert abs(b.total - 2 * a.total) <= 64
    assert a.scaled(3).adds == 3 * a.adds and a.scaled(3).passes == a.passes


def test_op_counts_structure() -> None:
    n = 512
    assert op_counts("softmax", n).passes == 3 and op_counts("layernorm", n).passes == 3
    assert op_counts("gelu", n).passes == 1
    sm, ex = op_counts("softmax", n), op_counts("exp", n)
    assert sm.multiplies > ex.multiplies and sm.adds > ex.adds and sm.divisions == ex.divisions + 1
    # The reference variant's 14-bit guard shift is one shift per element that Gemmini does not have.
    assert op_counts("gelu", n, "ibert").shifts - op_counts("gelu", n, "gemmini").shifts == n
    assert op_counts("softmax", n, "gemmini").float_multiplies == n
    assert op_counts("layernorm", n).divisions >= newton_iterations(32)
    with pytest.raises(KernelInputError):
        op_counts("tanh", n)
    with pytest.raises(KernelInputError):
        op_counts("gelu", 0)


def test_gelu_integer_output_scale_is_positive_and_monotone_above_minimum() -> None:
    s = 2**-12
    q = np.arange(-4 * 4096, 6 * 4096, 37)
    y, s_y = int_gelu(q, s, bits=20)
    assert s_y > 0
    x = q * s
    yy = dequantize(y, s_y)
    assert np.all(np.diff(yy[x > 0]) >= 0)
    assert math.isclose(float(yy[np.argmin(np.abs(x))]), 0.0, abs_tol=1e-3)


def test_exp_multiply_shift_division_is_exact_over_whole_range() -> None:
    from tstack.kernels.softmax import _ibert_poly, exp_constants

    rng = np.random.default_rng(11)
    scales = [ibert_exp_min_scale(), 0.3, *rng.uniform(ibert_exp_min_scale(), 0.3, 12).tolist()]
    for s in scales:
        x0 = exp_constants(s)[0]
        x = -np.arange(0, 31 * (-x0) + 5)
        _, z, _ = _ibert_poly(x, s)
        np.testing.assert_array_equal(z, np.maximum(x, 30 * x0) // x0)
