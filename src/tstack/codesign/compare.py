"""Comparing strategies: the base design's point, and each front's hypervolume against one common reference.

Hypervolumes of two fronts are comparable only against the same reference point. `HypervolumeBox` fixes it from
the problem alone, never from a run: (2 x the EDP of the base design running the largest shape, the area budget, the
perplexity limit), with the lower corner (0 EDP, 0 area, the largest shape's perplexity, the best any shape has), so
that a front's hypervolume is reported as the fraction of that box it dominates. Twice the base EDP lets a front
count candidates somewhat worse than the paper's hand-made point, which a trade-off front legitimately holds (a
smaller shape or a smaller design).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tstack.codesign.evaluate import Candidate, CodesignProblem, Evaluation, Evaluator
from tstack.codesign.front import hypervolume

REFERENCE_EDP_FACTOR = 2.0  # the reference EDP as a multiple of the base design's (module docstring)


@dataclass(frozen=True, slots=True)
class HypervolumeBox:
    """The reference point of every hypervolume of one problem, and the box it bounds."""

    reference_edp: float  # pJ x cycles
    reference_area_mm2: float
    reference_perplexity: float
    floor_perplexity: float  # the lowest perplexity any shape has (the largest shape's)

    @property
    def reference(self) -> tuple[float, float, float]:
        return (self.reference_edp, self.reference_area_mm2, self.reference_perplexity)

    @property
    def volume(self) -> float:
        return self.reference_edp * self.reference_area_mm2 * (self.reference_perplexity - self.floor_perplexity)

    def fraction(self, front: Sequence[Evaluation]) -> float:
        """The fraction of the box that `front` dominates (0: none of it; 1: all of it)."""
        points = [(e.edp, e.area_mm2, e.perplexity) for e in front]
        return hypervolume(points, self.reference) / self.volume if self.volume > 0 else 0.0


def base_point(problem: CodesignProblem, evaluator: Evaluator | None = None) -> Evaluation:
    """The base design (the space's hand-made point, e.g. gemmini-ibert) running the shape space's largest shape,
    priced and scored as every candidate is."""
    ev = Evaluator(problem, direct=True) if evaluator is None else evaluator
    return ev(Candidate(problem.hardware.base_params(), problem.shapes.largest()))


def hypervolume_box(problem: CodesignProblem, base: Evaluation | None = None) -> HypervolumeBox:
    """The common reference of `problem`'s hypervolumes (module docstring)."""
    point = base_point(problem) if base is None else base
    return HypervolumeBox(
        REFERENCE_EDP_FACTOR * point.edp,
        problem.area_budget_mm2,
        problem.perplexity_limit,
        float(problem.perplexity(problem.shapes.largest())),
    )
