"""A training-free accuracy proxy and a perplexity surrogate for searching without a trained supernet.

LiteTransformerSearch (Javaheripi et al., NeurIPS 2022) ranks decoder LMs by their decoder, i.e. non-embedding,
parameter count; on their released logs |Spearman rho| between that count and validation perplexity is 0.95-0.999
(ml-anchors §4.1). `decoder_params` is that count. `ProxyPerplexity` turns it into a perplexity-like number so the
paper's +0.1 / +1 perplexity selections have a scale: a power law through a reference point. It is a surrogate, not
a measurement; every document that uses it says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tstack.errors import TstackError
from tstack.nas.space import Architecture, SearchSpace
from tstack.workload.params import layer_params


def decoder_params(space: SearchSpace, arch: Architecture) -> int:
    """Non-embedding parameters of `arch`: every layer's attention, FFN and norms, plus the final norm."""
    spec = space.model_spec(arch)
    final_norm = 2 * spec.d_model if spec.final_norm else 0
    return sum(layer_params(spec, i) for i in range(spec.n_layers)) + final_norm


@dataclass(frozen=True, slots=True)
class ProxyPerplexity:
    """Surrogate perplexity ``reference_perplexity * (params / reference_params) ** -exponent``.

    The defaults put the space's largest architecture at 22.4 and, on the paper's space, the smallest near 25: the
    range of the paper's Fig. 26 y-axis (22-25), so that tolerances of 0.1 and 1 perplexity select comparably.
    Picklable, so Ray workers can run it."""

    space: SearchSpace
    reference_perplexity: float = 22.4
    exponent: float = 0.04

    def __call__(self, arch: Architecture) -> float:
        ref = decoder_params(self.space, self.space.largest())
        return float(self.reference_perplexity * (decoder_params(self.space, arch) / ref) ** -self.exponent)


def _ranks(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_vals = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(x: Sequence[float] | npt.ArrayLike, y: Sequence[float] | npt.ArrayLike) -> float:
    """Spearman's rank correlation (Pearson's r of the average ranks, as scipy.stats.spearmanr)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if len(a) != len(b):
        raise TstackError(f"spearman needs two sequences of equal length, got {len(a)} and {len(b)}")
    if len(a) < 2:
        raise TstackError("spearman needs at least two pairs")
    ra, rb = _ranks(a), _ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    if denom == 0.0:
        return float("nan")  # a constant sequence has no ranking
    return float((ra * rb).sum() / denom)
