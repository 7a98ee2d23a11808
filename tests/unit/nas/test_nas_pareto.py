"""Pareto fronts, hypervolume, the paper's tolerance selection, and the LTS proxy with Spearman's rho."""

from __future__ import annotations

import numpy as np
import pytest

from tstack.errors import TstackError
from tstack.nas.pareto import PAPER_GAINS, Point, hypervolume_2d, pareto_front, pareto_mask, select_within
from tstack.nas.proxy import ProxyPerplexity, decoder_params, spearman
from tstack.spec.nas_space import load_space


def _brute_mask(pts: np.ndarray) -> np.ndarray:
    n = len(pts)
    out = np.ones(n, dtype=bool)
    for i in range(n):
        for j in range(n):
            if np.all(pts[j] <= pts[i]) and np.any(pts[j] < pts[i]):
                out[i] = False
    return out


@pytest.mark.parametrize("seed", range(5))
def test_pareto_mask_matches_brute_force_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 6, size=(60, 2)).astype(float)  # many ties and exact duplicates
    np.testing.assert_array_equal(pareto_mask(pts), _brute_mask(pts))


def test_pareto_mask_edge_cases() -> None:
    assert pareto_mask(np.zeros((0, 2))).shape == (0,)
    np.testing.assert_array_equal(pareto_mask([[1, 1], [1, 1]]), [True, True])
    with pytest.raises(TstackError):
        pareto_mask([1, 2, 3])


def _grid_hypervolume(pts: np.ndarray, ref: tuple[float, float]) -> float:
    """Exact for integer coordinates: count unit cells dominated by some point."""
    area = 0
    for x in range(int(ref[0])):
        for y in range(int(ref[1])):
            if np.any((pts[:, 0] <= x) & (pts[:, 1] <= y)):
                area += 1
    return float(area)


@pytest.mark.parametrize("seed", range(4))
def test_hypervolume_matches_cell_counting(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 12, size=(15, 2)).astype(float)
    assert hypervolume_2d(pts, (12.0, 12.0)) == _grid_hypervolume(pts, (12.0, 12.0))


def test_hypervolume_by_hand() -> None:
    # (1,3) and (2,1) against (4,4): 3x1 + 2x2 = 3 + 4... union = [1,4]x[3,4] + [2,4]x[1,3] = 3 + 4 = 7
    assert hypervolume_2d([[1, 3], [2, 1]], (4, 4)) == 7.0
    assert hypervolume_2d([[5, 5]], (4, 4)) == 0.0
    assert hypervolume_2d(np.zeros((0, 2)), (1, 1)) == 0.0


def _pt(key: str, ppl: float, lat: float, en: float) -> Point:
    return Point(key, ppl, lat, en)


def test_selection_within_tolerance_and_gains() -> None:
    base = _pt("base", 22.4, 100.0, 1000.0)
    pts = [
        _pt("a", 22.45, 70.0, 600.0),  # within +0.1
        _pt("b", 22.6, 50.0, 400.0),  # within +1 only
        _pt("c", 23.5, 10.0, 10.0),  # outside both
        _pt("d", 22.48, 80.0, 700.0),  # within +0.1 but more EDP than a
    ]
    sel = select_within(pts, base, 0.1)
    assert sel.point.key == "a"
    assert sel.latency_gain == pytest.approx(100 / 70)
    assert sel.energy_gain == pytest.approx(1000 / 600)
    assert sel.edp_gain == pytest.approx(100_000 / 42_000)
    assert sel.paper_gains == PAPER_GAINS[0.1]
    assert select_within(pts, base, 1.0).point.key == "b"
    # a stand-alone baseline with a better perplexity tightens the limit
    assert select_within(pts, base, 0.1, baseline_perplexity=22.3).point.key == "base"
    front = pareto_front([*pts, base])
    assert [p.key for p in front] == ["base", "a", "b", "c"]


def test_decoder_params_is_gpt2_non_embedding_count() -> None:
    # GPT-2 small: 124,439,808 parameters, of which 50257x768 token and 1024x768 position embeddings and a final
    # LayerNorm of 2x768; the paper space's largest candidate is six of its twelve blocks (+ the final norm)
    space = load_space("paper")
    block = (124_439_808 - 50257 * 768 - 1024 * 768 - 2 * 768) // 12
    assert decoder_params(space, space.largest()) == 6 * block + 2 * 768


def test_proxy_perplexity_is_monotone_in_params() -> None:
    space = load_space("cpu")
    proxy = ProxyPerplexity(space)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(40)]
    params = [decoder_params(space, a) for a in archs]
    ppl = [proxy(a) for a in archs]
    assert spearman(params, ppl) == pytest.approx(-1.0)
    assert proxy(space.largest()) == pytest.approx(22.4)
    assert 24.5 < proxy(space.smallest()) < 25.5


def test_spearman_matches_scipy_values() -> None:
    # scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]).statistic == 0.8207826816681233 (average ranks)
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233, abs=1e-12)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(TstackError):
        spearman([1, 2], [1])
