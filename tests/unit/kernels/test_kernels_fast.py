"""The kernels' fast paths (int32 / exact-float evaluation, unsigned shifts) give the same integers as their literal
int64 evaluation, at the edges of the bounds that select them as well as on random data."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tstack.kernels import int_gelu, int_layernorm, int_softmax, requantize, shift_round_half_even
from tstack.kernels import softmax as softmax_mod
from tstack.kernels.gelu import _gelu_block, gelu_bound, gelu_constants, gelu_int32_bound
from tstack.kernels.layernorm import _ibert_rows, isqrt_exact
from tstack.kernels.quant import checked_ints, mul_shift_ok, mul_shift_rhe
from tstack.kernels.softmax import _ibert_plan, _softmax_rows, ibert_exp_min_scale


def _gelu_literal(q: np.ndarray, scale: float, variant: str = "ibert") -> np.ndarray:
    b, c, one, shift, _ = gelu_constants(scale, variant)  # type: ignore[arg-type]
    out = np.empty(q.size, dtype=np.int64)
    _gelu_block(q.reshape(-1).astype(np.int64), np.int64, b, c, one, shift, out)
    return out.reshape(q.shape)


@pytest.mark.parametrize("variant", ["ibert", "gemmini"])
@pytest.mark.parametrize("seed", range(4))
def test_gelu_int32_path_matches_int64(variant: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    taken = 0
    for _ in range(40):
        bits = int(rng.integers(2, 32))
        s = float(rng.uniform(0.3, 12.0)) / 2 ** (bits - 1)
        if gelu_bound(bits, s, variant) > 2**63 - 1:  # type: ignore[arg-type]
            continue
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        q = rng.integers(lo, hi + 1, 3000)
        q[:4] = [lo, hi, 0, -1]
        taken += gelu_int32_bound(max(-lo, hi), s, variant) < 2**31  # type: ignore[arg-type]
        for arr in (q, q.astype(np.int32)):
            out, _ = int_gelu(arr, s, bits=bits, variant=variant)  # type: ignore[arg-type]
            assert out.dtype == np.int64
            np.testing.assert_array_equal(out, _gelu_literal(q, s, variant))
    assert taken >= 10


def test_gelu_int32_bound_is_tight_enough_for_16_bit() -> None:
    # The case the encoder and the benchmark run: 16-bit inputs at a scale of a few units over 2^15.
    assert gelu_int32_bound(2**15, 8 / 2**15) < 2**31


def _softmax_literal(q: np.ndarray, s: float, out_bits: int, mask: np.ndarray | None) -> np.ndarray:
    rows = q.reshape(-1, q.shape[-1]).astype(np.int64)
    keep = None if mask is None else np.broadcast_to(mask, q.shape).reshape(rows.shape)
    return _softmax_rows(rows, keep, s, 32, out_bits, "ibert").reshape(q.shape)


@pytest.mark.parametrize("seed", range(6))
def test_softmax_fast_path_matches_int64(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lo_s = np.log(ibert_exp_min_scale())
    for trial in range(25):
        s = float(np.exp(rng.uniform(lo_s, np.log(0.25))))
        plan = _ibert_plan(s)
        assert plan is not None
        cols = int(rng.integers(1, 160))
        q = np.rint(rng.normal(0, rng.uniform(0.2, 30.0), (3, int(rng.integers(1, 30)), cols)) / s).astype(np.int64)
        mask = None
        if trial % 2:
            mask = rng.random((3, 1, cols)) < 0.6
            mask[..., 0] = True
        out_bits = int(rng.choice([4, 8, 16]))
        want = _softmax_literal(q, s, out_bits, mask)
        got, _ = int_softmax(q.astype(np.int32), s, bits=32, output_bits=out_bits, mask=mask)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("force", ["float_z", "int64_poly"])
def test_softmax_fast_path_branches(force: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each plan branch (z by float32 division vs. int32 multiply-shift; the polynomial in int32 vs. int64) alone.
    rng = np.random.default_rng(11)
    for s in (2**-8, 2**-10, 3e-3, 0.05):
        plan = _ibert_plan(s)
        assert plan is not None
        forced = (
            dataclasses.replace(plan, z_multiplier=0)
            if force == "float_z"
            else dataclasses.replace(plan, poly_int32=False)
        )
        monkeypatch.setattr(softmax_mod, "_ibert_plan", lambda _s, p=forced: p)
        q = np.rint(rng.normal(0, 6, (4, 40, 64)) / s).astype(np.int64)
        got, _ = int_softmax(q, s, bits=32)
        np.testing.assert_array_equal(got, _softmax_literal(q, s, 8, None))


def test_softmax_plan_conditions_hold_over_the_valid_scale_range() -> None:
    # The fast path covers every scale the kernel accepts (from the finest, ibert_exp_min_scale, up to 0.3).
    for s in np.geomspace(ibert_exp_min_scale(), 0.3, 200):
        assert _ibert_plan(float(s)) is not None


def test_softmax_wide_spread_falls_back_exactly() -> None:
    # max - min ≥ 2^31 cannot be narrowed to int32: the int64 path runs, with the same result.
    q = np.array([[2**31 - 1, -(2**31), 0, 5]])
    got, _ = int_softmax(q, 0.01, bits=32)
    np.testing.assert_array_equal(got, _softmax_literal(q, 0.01, 8, None))


@pytest.mark.parametrize("seed", range(4))
def test_layernorm_fast_path_matches_int64(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(25):
        n = int(rng.choice([1, 8, 64, 384, 768]))
        bits = int(rng.integers(4, 24))
        q = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), (int(rng.integers(1, 20)), n))
        q = (q * rng.uniform(0.0, 1.0, (q.shape[0], 1))).astype(np.int64)
        q[0] = q[0, 0]  # a constant row
        w = rng.uniform(0.2, 2.0, n) * rng.choice([-1.0, 1.0], n)
        b = rng.normal(0, 0.5, n)
        shift = int(rng.integers(0, 12)) if trial % 2 else None
        if shift is not None and n * (2**bits >> shift) ** 2 > 2**63 - 1:
            shift = None  # the kernel's own overflow guard would refuse it
        got, s_out = int_layernorm(q.astype(np.int32), 0.01, w, b, bits=bits, shift=shift)
        if shift is None:
            from tstack.kernels.layernorm import ibert_layernorm_shift

            shift = ibert_layernorm_shift(q, bits=bits)
        s = float(np.sqrt(np.float32(n))) / 2**30
        want = _ibert_rows(q, shift) + np.floor((b / w) / s).astype(np.int64)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(s_out, s * w)


def test_isqrt_exact_at_squares() -> None:
    k = np.array([0, 1, 2, 3, 2**26 - 1, 2**26, 2**30, 2**31 - 1], dtype=np.int64)
    v = np.concatenate([k * k, k * k - 1, k * k + 1])
    v = v[v >= 0]
    import math

    assert isqrt_exact(v).tolist() == [math.isqrt(int(x)) for x in v]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=8),
    st.integers(1, 2**31 - 1),
    st.integers(1, 62),
    st.integers(0, 20),
)
def test_mul_shift_rhe_is_round_half_even(q: list[int], m: int, shift: int, zeros: int) -> None:
    arr = np.array(q, dtype=np.int64) >> zeros << zeros  # trailing zeros make ties possible
    q_absmax = int(np.abs(arr).max())
    if not mul_shift_ok(q_absmax, m, shift):
        return
    got = mul_shift_rhe(arr, m, shift, q_absmax)
    assert got.tolist() == [round(Fraction(int(x) * m, 2**shift)) for x in arr]
    np.testing.assert_array_equal(got, shift_round_half_even(arr * m, shift))


def test_mul_shift_rhe_per_channel_and_in_place() -> None:
    rng = np.random.default_rng(3)
    q = rng.integers(-(2**24), 2**24, (50, 6))
    m = rng.integers(1, 2**31, 6)
    want = shift_round_half_even(q * m, 40)
    got = mul_shift_rhe(q.copy(), m, 40, 2**24, inplace=True)
    np.testing.assert_array_equal(got, want)


def test_checked_ints_keeps_narrow_dtypes_and_checks_wide_ones() -> None:
    q8 = np.array([-128, 127], dtype=np.int8)
    arr, lo, hi = checked_ints(q8, 8)
    assert arr is q8 and (lo, hi) == (-128, 127)  # no copy, no pass: the dtype bounds it
    arr, lo, hi = checked_ints(np.array([3, -5, 7]), 8)
    assert (lo, hi) == (-5, 7)
    with pytest.raises(Exception, match="8-bit"):
        checked_ints(np.array([300], dtype=np.int32), 8)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_requantize_fast_matches_literal(dtype: type) -> None:
    rng = np.random.default_rng(4)
    info = np.iinfo(dtype)
    q = rng.integers(max(info.min, -(2**31)), min(info.max, 2**31 - 1), (40, 16)).astype(dtype)
    for s_in, s_out in ((3e-5, 0.05), (np.linspace(1e-5, 1e-3, 16), 0.02), (1.0, 2.0)):
        got = requantize(q, s_in, s_out, 8, in_bits=32)
        from tstack.kernels.quant import dyadic

        d = dyadic(np.asarray(s_in) / s_out)
        want = np.clip(shift_round_half_even(q.astype(np.int64) * d.multiplier, d.shift), -128, 127)
        np.testing.assert_array_equal(got, want)


def test_threads_give_the_same_integers() -> None:
    from tstack.kernels import get_num_threads, set_num_threads

    rng = np.random.default_rng(9)
    g = rng.integers(-(2**15), 2**15, (64, 3000))
    sm = np.rint(rng.normal(0, 500, (6, 50, 70))).astype(np.int64)
    keep = rng.random((6, 1, 70)) < 0.8
    keep[..., 0] = True
    ln = rng.integers(-(2**21), 2**21, (300, 384))
    w, b = rng.uniform(0.5, 1.5, 384), rng.normal(0, 0.1, 384)

    def run() -> list[np.ndarray]:
        return [
            int_gelu(g, 2**-12, bits=16)[0],
            int_softmax(sm, 2**-8, bits=32, mask=keep)[0],
            int_layernorm(ln, 1e-3, w, b, bits=22, shift=6)[0],
        ]

    assert get_num_threads() == 1
    single = run()
    set_num_threads(3)
    try:
        multi = run()
    finally:
        set_num_threads(1)
    for a, c in zip(single, multi, strict=True):
        np.testing.assert_array_equal(a, c)
    with pytest.raises(Exception, match="threads"):
        set_num_threads(0)


@pytest.mark.parametrize(("n", "shift"), [(768, 10), (768, 6), (769, 10), (384, 0), (1000, 9)])
def test_layernorm_variance_paths(n: int, shift: int) -> None:
    # 22-bit rows: the sum of squares in int32 slices (n = 768, 1000: slices dividing the row), or in float64 where
    # no slice length divides the row (769, a prime), or in one int32 sum (small squares).
    rng = np.random.default_rng(n + shift)
    q = rng.integers(-(2**21), 2**21, (40, n))
    q[1] = rng.integers(-3, 3, n)  # a row whose std is tiny: a large factor
    w, b = rng.uniform(0.5, 1.5, n), rng.normal(0, 0.5, n)
    got, _ = int_layernorm(q, 1e-3, w, b, bits=22, shift=shift)
    s = float(np.sqrt(np.float32(n))) / 2**30
    np.testing.assert_array_equal(got, _ibert_rows(q, shift) + np.floor((b / w) / s).astype(np.int64))


def _layernorm_literal(q: np.ndarray, w: np.ndarray, b: np.ndarray, shift: int) -> np.ndarray:
    n = q.shape[-1]
    s = float(np.sqrt(np.float32(n))) / 2**30
    rows = q.reshape(-1, n).astype(np.int64)
    return (_ibert_rows(rows, shift) + np.floor((b / w) / s).astype(np.int64)).reshape(q.shape)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(4, 31),
    st.sampled_from([1, 2, 3, 7, 64, 128, 384, 768, 769]),
    st.integers(1, 9),
    st.integers(0, 24),
    st.integers(0, 2**32 - 1),
    st.sampled_from([np.int64, np.int32]),
)
def test_layernorm_fast_path_equals_literal_int64(
    bits: int, n: int, rows: int, shift: int, seed: int, dtype: type
) -> None:
    # Random rows with the declared range's edge values, a constant row and a row whose std is tiny, at every shift
    # the kernel accepts: the int32 / float64 path (or the int64 output stage, or the literal fallback) gives the
    # literal int64 evaluation's integers, for int64 and int32 inputs alike.
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if n * (2**bits >> shift) ** 2 > 2**63 - 1 or 2**bits * 2**31 > 2**63 - 1:
        return  # the kernel's overflow guard refuses these
    rng = np.random.default_rng(seed)
    q = rng.integers(lo, hi + 1, (rows + 2, n))
    q[0] = rng.choice([lo, hi])  # a constant row at an edge
    q[1] = q[1] % 3 + (lo if seed % 2 else hi - 3)  # a tiny spread near an edge
    q.flat[rng.integers(0, q.size, 4)] = [lo, hi, lo, hi]
    w = rng.uniform(0.2, 2.0, n) * rng.choice([-1.0, 1.0], n)
    b = rng.normal(0, 2.0, n)
    got, _ = int_layernorm(q.astype(dtype), 0.01, w, b, bits=bits, shift=shift)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, _layernorm_literal(q, w, b, shift))


@pytest.mark.parametrize(("bits", "shift", "float_output"), [(22, 10, True), (31, 12, True), (31, 21, False)])
def test_layernorm_output_stages(bits: int, shift: int, float_output: bool) -> None:
    # |y · factor| ≤ 2^31 · min(2^shift, spread) for a row with ⌊√var⌋ = 0: a large shift over a wide range takes
    # the int64 output stage instead of the float64 one; both are exact.
    from tstack.kernels.layernorm import _ibert_affine, _ibert_plan

    n = 96
    rng = np.random.default_rng(bits + shift)
    w, b = rng.uniform(0.5, 1.5, n), rng.normal(0, 1.0, n)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    plan = _ibert_plan(shift, hi - lo, 2 ** (bits - 1), w.tobytes(), b.tobytes())
    assert plan is not None and plan.float_output is float_output
    assert _ibert_affine(w.tobytes(), b.tobytes())[0].size == n
    q = rng.integers(lo, hi + 1, (12, n))
    q[0] = 5  # ⌊√var⌋ = 0: std 1, factor 2^31
    q[1] = rng.integers(0, 2**shift, n)  # y >> shift ∈ {-1, 0}: the largest |y · factor| the bound allows
    q[2, :2] = [lo, hi]
    got, _ = int_layernorm(q, 0.01, w, b, bits=bits, shift=shift)
    np.testing.assert_array_equal(got, _layernorm_literal(q, w, b, shift))


def test_layernorm_cached_constants_follow_the_weights() -> None:
    # The folded bias and the output scale are cached per (γ, β): new values give new constants, and the returned
    # scale is the caller's own array.
    rng = np.random.default_rng(5)
    q = rng.integers(-(2**21), 2**21, (4, 32))
    w, b = rng.uniform(0.5, 1.5, 32), rng.normal(0, 0.5, 32)
    _, s1 = int_layernorm(q, 0.01, w, b, bits=22, shift=6)
    s1 *= 2  # writable, and not the cached array
    w2 = w.copy()
    w2[3] *= -1
    out2, _ = int_layernorm(q, 0.01, w2, b, bits=22, shift=6)
    np.testing.assert_array_equal(out2, _layernorm_literal(q, w2, b, 6))
    _, s3 = int_layernorm(q, 0.01, w, b, bits=22, shift=6)
    np.testing.assert_array_equal(s3, s1 / 2)
    with pytest.raises(Exception, match="weight is 0"):
        int_layernorm(q, 0.01, np.where(np.arange(32) == 7, 0.0, w), b, bits=22)


@pytest.mark.parametrize("kernel", ["layernorm", "gelu"])
def test_fused_range_check_rejects_like_checked_ints(kernel: str) -> None:
    # int64 inputs are range-checked block by block (a value out of range in the last block, past several blocks);
    # the message is the one checked_ints gives, with the whole array's minimum and maximum.
    rng = np.random.default_rng(2)
    bits = 16
    q = rng.integers(-(2**15), 2**15, (200, 768))
    q[-1, -1] = 2**15
    q[-1, -2] = -(2**15) - 3
    with pytest.raises(Exception) as want:
        checked_ints(q, bits)
    with pytest.raises(Exception) as got:
        if kernel == "layernorm":
            int_layernorm(q, 0.01, np.ones(768), np.zeros(768), bits=bits, shift=0)
        else:
            int_gelu(q, 2**-12, bits=bits)
    assert type(got.value) is type(want.value)
    assert str(got.value) == str(want.value)
    assert f"[{-(2**15) - 3}, {2**15}]" in str(got.value)


def test_checked_int32_narrows_and_bounds() -> None:
    from tstack.kernels.quant import NARROW_BLOCK, checked_int32

    rng = np.random.default_rng(8)
    q = rng.integers(-(2**30), 2**30, 3 * NARROW_BLOCK + 17).reshape(-1, 1)
    q[5], q[-1] = -(2**31), 2**31 - 1
    x, lo, hi = checked_int32(q, 32, "test.narrow")
    assert x.dtype == np.int32 and x.shape == q.shape
    np.testing.assert_array_equal(x, q)
    assert (lo, hi) == checked_ints(q, 32)[1:]
    q32 = q.astype(np.int32)
    assert checked_int32(q32, 32, "test.narrow")[0] is q32  # narrow dtypes pass through, no copy


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 31), st.floats(0.3, 12.0), st.integers(0, 2**32 - 1), st.sampled_from(["ibert", "gemmini"]))
def test_gelu_int64_input_equals_literal(bits: int, mult: float, seed: int, variant: str) -> None:
    # int64 inputs take the block-wise checked int32 path where the declared width proves it exact, else the
    # checked int64 path: the integers are the literal int64 evaluation's either way, edge values included.
    s = mult / 2 ** (bits - 1)
    if gelu_bound(bits, s, variant) > 2**63 - 1:  # type: ignore[arg-type]
        return
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    rng = np.random.default_rng(seed)
    q = rng.integers(lo, hi + 1, (3, 70001))
    q.flat[:4] = [lo, hi, 0, -1]
    out, _ = int_gelu(q, s, bits=bits, variant=variant)  # type: ignore[arg-type]
    np.testing.assert_array_equal(out, _gelu_literal(q, s, variant))


def test_for_blocks_order_and_errors_with_threads() -> None:
    from tstack.kernels import set_num_threads
    from tstack.kernels._runtime import for_blocks

    set_num_threads(3)
    try:
        assert for_blocks(10, 1, lambda a, b: (a, b)) == [(i, i + 1) for i in range(10)]
        assert for_blocks(1, 4, lambda a, b: (a, b)) == [(0, 1)]
        # A block that itself splits runs its inner loop in place, in workers and in the calling thread alike.
        assert for_blocks(4, 1, lambda a, b: len(for_blocks(6, 1, lambda c, d: c))) == [6] * 4

        def fail(a: int, b: int) -> int:
            if a == 7:
                raise ValueError("block 7")
            return a

        with pytest.raises(ValueError, match="block 7"):
            for_blocks(10, 1, fail)
    finally:
        set_num_threads(1)
