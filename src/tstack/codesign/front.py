"""Pareto fronts and hypervolumes in any number of minimized objectives (co-design: EDP, area, perplexity).

The front is the set of non-dominated points: a point dominates another when it is no worse in every objective and
better in one; equal points do not dominate each other. The hypervolume is the volume dominated by the points and
bounded by a reference point, computed exactly by slicing along the last objective (a sum of 2-D areas from
`tstack.nas.pareto.hypervolume_2d`), which is O(n^2 log n) for three objectives: ample for the fronts of a search.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from tstack.errors import TstackError
from tstack.nas.pareto import hypervolume_2d

FloatArray = npt.NDArray[np.float64]


def pareto_mask_nd(objectives: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Which rows of an (n, k) array are non-dominated when every column is minimized (vectorized per row)."""
    pts = np.asarray(objectives, dtype=np.float64)
    if pts.ndim != 2:
        raise TstackError(f"pareto_mask_nd takes an (n, k) array, got shape {pts.shape}")
    mask = np.ones(len(pts), dtype=bool)
    for i in range(len(pts)):
        no_worse = np.all(pts <= pts[i], axis=1)
        better = np.any(pts < pts[i], axis=1)
        mask[i] = not np.any(no_worse & better)
    return mask


def hypervolume(objectives: npt.ArrayLike, reference: Sequence[float]) -> float:
    """Volume dominated by the points and bounded by `reference` (every objective minimized), for 2 or 3 objectives.

    Points that do not strictly dominate the reference contribute nothing."""
    pts: FloatArray = np.asarray(objectives, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if pts.size == 0:
        return 0.0
    pts = pts.reshape(-1, len(ref))
    if len(ref) == 2:
        return hypervolume_2d(pts, (float(ref[0]), float(ref[1])))
    if len(ref) != 3:
        raise TstackError(f"hypervolume takes 2 or 3 objectives, got {len(ref)}")
    pts = pts[np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[pareto_mask_nd(pts)]
    levels = np.unique(pts[:, 2])
    bounds = np.append(levels[1:], ref[2])
    total = 0.0
    for z, z_next in zip(levels, bounds, strict=True):
        # between z and the next level, the dominated region's cross-section is that of every point at or below z
        below = pts[pts[:, 2] <= z]
        total += hypervolume_2d(below[:, :2], (float(ref[0]), float(ref[1]))) * float(z_next - z)
    return total
