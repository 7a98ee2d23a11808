"""Pareto fronts of (perplexity, EDP), their 2-D hypervolume, and the paper's selection at a perplexity tolerance.

Both objectives are minimized. A point dominates another when it is no worse in both and better in one; equal
points do not dominate each other, so both stay on the front.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tstack.errors import TstackError

# Table 9 / §6.4 (digest): gains of the selected architecture over the baseline trained from scratch.
# (latency, energy, EDP); the Conclusion gives the EDP ratios as 2.24x and 10.56x.
PAPER_GAINS: dict[float, tuple[float, float, float]] = {0.1: (1.4, 1.6, 2.24), 1.0: (2.4, 4.4, 10.56)}
PAPER_TOLERANCES = (0.1, 1.0)


@dataclass(frozen=True, slots=True)
class Point:
    """One evaluated candidate: its architecture key, perplexity and hardware cost."""

    key: str
    perplexity: float
    latency_cycles: float
    energy_pj: float

    @property
    def edp(self) -> float:
        """Energy-delay product in pJ x cycles."""
        return self.energy_pj * self.latency_cycles


def pareto_mask(objectives: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Which rows of an (n, 2) array are non-dominated when minimizing both columns (O(n log n))."""
    pts = np.asarray(objectives, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise TstackError(f"pareto_mask takes an (n, 2) array, got shape {pts.shape}")
    n = len(pts)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    order = np.lexsort((pts[:, 1], pts[:, 0]))  # by x, then y
    best_y = np.inf
    i = 0
    while i < n:
        # a run of equal x: only its smallest y (and equal copies of it) can be non-dominated
        j = i
        x = pts[order[i], 0]
        while j < n and pts[order[j], 0] == x:
            j += 1
        run = order[i:j]
        y_min = pts[run[0], 1]
        if y_min < best_y:
            mask[run[pts[run, 1] == y_min]] = True
            best_y = y_min
        i = j
    return mask


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """The non-dominated points in (perplexity, EDP), sorted by perplexity."""
    if not points:
        return []
    mask = pareto_mask([(p.perplexity, p.edp) for p in points])
    return sorted((p for p, m in zip(points, mask, strict=True) if m), key=lambda p: (p.perplexity, p.edp, p.key))


def hypervolume_2d(objectives: npt.ArrayLike, reference: tuple[float, float]) -> float:
    """Area dominated by the points and bounded by `reference` (both objectives minimized).

    Points that do not strictly dominate the reference contribute nothing."""
    pts: npt.NDArray[np.float64] = np.asarray(objectives, dtype=np.float64).reshape(-1, 2)
    rx, ry = reference
    pts = pts[(pts[:, 0] < rx) & (pts[:, 1] < ry)]
    if len(pts) == 0:
        return 0.0
    front = pts[pareto_mask(pts)]
    front = front[np.lexsort((front[:, 1], front[:, 0]))]  # x rising, so y falling
    xs = np.append(front[1:, 0], rx)
    return float(np.sum((xs - front[:, 0]) * (ry - front[:, 1])))


@dataclass(frozen=True, slots=True)
class Selection:
    """The lowest-EDP candidate within `tolerance` perplexity of the baseline, and its gains over the baseline."""

    tolerance: float
    point: Point
    baseline: Point

    @property
    def latency_gain(self) -> float:
        return self.baseline.latency_cycles / self.point.latency_cycles

    @property
    def energy_gain(self) -> float:
        return self.baseline.energy_pj / self.point.energy_pj

    @property
    def edp_gain(self) -> float:
        return self.baseline.edp / self.point.edp

    @property
    def paper_gains(self) -> tuple[float, float, float] | None:
        """The paper's (latency, energy, EDP) gains at this tolerance, where it reports one."""
        return PAPER_GAINS.get(self.tolerance)


def select_within(
    points: Sequence[Point], baseline: Point, tolerance: float, baseline_perplexity: float | None = None
) -> Selection:
    """Lowest EDP among the points whose perplexity is at most the baseline's plus `tolerance` (§6.4).

    `baseline_perplexity` overrides the baseline point's perplexity: the paper compares against the baseline
    trained stand-alone, whose perplexity differs from the same architecture inside the supernet. The baseline
    itself is a candidate, so the selection always exists."""
    limit = (baseline.perplexity if baseline_perplexity is None else baseline_perplexity) + tolerance
    eligible = [p for p in (*points, baseline) if p.perplexity <= limit]
    if not eligible:  # only when a stand-alone baseline beats every supernet candidate by more than `tolerance`
        eligible = [baseline]
    best = min(eligible, key=lambda p: (p.edp, p.perplexity, p.key))
    return Selection(tolerance, best, baseline)
