"""The alternating strategy: rounds of hardware search on the current best shape, then shape search on the current
best hardware, sharing one budget of proposals.

Round r (1-based) runs two phases, each its own Optuna study (``hardware.r``, ``shape.r``):

1. the hardware for the incumbent shape (round 1: the shape space's largest, as the sequential strategy's hardware
   phase), minimizing the metric under the area budget; the best design within the budget is round r's design;
2. the shapes on that design, minimizing (metric, perplexity) under the perplexity limit.

The incumbent is then the feasible candidate with the lowest metric of every phase so far, and its shape is the next
round's. So round 1 is the sequential strategy with a smaller budget, and each later round asks whether the design
should change for the shape the search settled on, and the shape for the design; the constraints stay decoupled as
in the sequential strategy (a hardware phase learns only the area constraint, a shape phase only the perplexity
one), which is what the joint search lacks.

Warm starts: from round 2 on, a phase knows what the earlier phases of its kind learnt. (1) Carried trials: every
design (shape) an earlier hardware (shape) phase priced enters the new study as a finished trial, not a proposal,
with its metric scaled to the new fixed half by the ratio of one reference point priced under both (the previous
round's design with the new shape, as the previous shape phase priced it; the new shape on the previous and the new
design), its area or perplexity unchanged since neither depends on the other half. TPE then starts from the
earlier phases' model of where the good and the feasible points are instead of from random start-up proposals;
without the reference pair (the incumbent came from elsewhere) nothing is carried. (2) Seeds: the phase's first
proposals are the previous phase's best points (up to `SEEDS_MAX`, at most a quarter of the budget but at least
one) re-priced for the new fixed half: the designs within the area budget, or the shapes within the perplexity
limit, with the lowest metric (for shapes the incumbent's first). A candidate an earlier phase evaluated is not
evaluated again. Carried trials, seeds and the fixed half of every phase follow from the stored results of the
phases before it, so a resumed search rebuilds them exactly.

The budget: the hardware share of the proposals (as in the sequential strategy) split evenly over the rounds'
hardware phases, the rest over their shape phases; the earlier rounds take the remainders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tstack.codesign.evaluate import Candidate, CodesignProblem, Evaluation
from tstack.codesign.phases import (
    Carried,
    Phase,
    PhaseSpec,
    best_hardware,
    hardware_params_of,
    phase_spec,
    shape_params_of,
)
from tstack.codesign.space import HardwareParams
from tstack.errors import SpecError
from tstack.nas.space import Architecture

SEEDS_MAX = 5  # the previous phase's best points re-priced first: anchors for the carried trials' scaled values

RunPhase = Callable[[str, PhaseSpec, Mapping[str, Any]], list[Evaluation]]
"""Runs (or resumes) one phase as the study of that name, with extra settings for its stored metadata, and returns
its stored evaluations."""


def round_budgets(evaluations: int, hardware_share: float, rounds: int) -> list[tuple[int, int]]:
    """(hardware phase, shape phase) proposals of each round: `evaluations` in all (module docstring)."""
    if rounds < 1:
        raise SpecError(f"the alternating strategy needs at least 1 round, got {rounds}")
    if evaluations < 2 * rounds:
        raise SpecError(f"{rounds} alternating rounds need at least {2 * rounds} evaluations, got {evaluations}")
    hardware = min(evaluations - rounds, max(rounds, round(evaluations * hardware_share)))
    shape = evaluations - hardware
    return [(_part(hardware, rounds, r), _part(shape, rounds, r)) for r in range(rounds)]


def _part(total: int, parts: int, i: int) -> int:
    return total // parts + (1 if i < total % parts else 0)


def phase_names(rounds: int) -> list[tuple[str, Phase]]:
    """The study suffix and kind of each phase, in order."""
    return [(f"{phase.value}.{r}", phase) for r in range(1, rounds + 1) for phase in (Phase.HARDWARE, Phase.SHAPE)]


@dataclass
class _Knowledge:
    """What the phases of one kind have learnt, on the scale of the latest phase: each point's parameters and
    evaluation, and the factor that turns its metric into the latest phase's."""

    points: dict[str, tuple[Evaluation, float]] = field(default_factory=dict)

    def learn(self, key: str, e: Evaluation) -> None:
        self.points[key] = (e, 1.0)

    def rescale(self, ratio: float) -> None:
        self.points = {k: (e, f * ratio) for k, (e, f) in self.points.items()}


def run_alternating(problem: CodesignProblem, budgets: Sequence[tuple[int, int]], run: RunPhase) -> HardwareParams:
    """Run (or resume) every round; returns the design the last shape phase searched on."""
    history: dict[str, Evaluation] = {}
    shape = problem.shapes.largest()
    designs, shapes = _Knowledge(), _Knowledge()
    previous_hw: list[Evaluation] = []
    previous_shapes: list[Evaluation] = []
    chosen: HardwareParams | None = None
    for r, (hw_budget, shape_budget) in enumerate(budgets, start=1):
        carried: list[Carried] = []
        if chosen is not None:  # rounds after the first: the designs so far, for the new shape
            old = next(e for e in previous_hw if e.candidate.hardware == chosen)
            new = history.get(Candidate(chosen, shape).key)
            carried = _carry(problem, designs, old, new, partial(_carried_design, problem, anchor=new))
        seeds = [hardware_params_of(problem, d) for d in _top_designs(problem, previous_hw, _seed_count(hw_budget))]
        spec = phase_spec(problem, Phase.HARDWARE, hw_budget, shape=shape, prior=history, seeds=seeds,
                          carried=carried)  # fmt: skip
        previous_hw = run(f"{Phase.HARDWARE.value}.{r}", spec, {"round": r, "fixed_shape": shape.key})
        history.update((e.candidate.key, e) for e in previous_hw)
        for e in previous_hw:
            designs.learn(e.candidate.hardware.key, e)
        before, chosen = chosen, best_hardware(problem, previous_hw)

        carried = []
        if before is not None:  # the shapes so far, on the new design
            anchor = history[Candidate(chosen, shape).key]
            old_e = history.get(Candidate(before, shape).key)
            carried = _carry(problem, shapes, old_e, anchor, partial(_carried_shape, problem, anchor=anchor))
        tops = _top_shapes(problem, previous_shapes, shape, _seed_count(shape_budget)) if r > 1 else []
        spec = phase_spec(problem, Phase.SHAPE, shape_budget, hardware=chosen, prior=history, carried=carried,
                          seeds=[shape_params_of(problem, a) for a in tops])  # fmt: skip
        previous_shapes = run(f"{Phase.SHAPE.value}.{r}", spec, {"round": r, "chosen_hardware": chosen.key})
        history.update((e.candidate.key, e) for e in previous_shapes)
        for e in previous_shapes:
            shapes.learn(e.candidate.arch.key, e)
        incumbent = _incumbent(problem, history.values())
        if incumbent is not None:
            shape = incumbent.candidate.arch
    assert chosen is not None
    return chosen


def _carry(
    problem: CodesignProblem,
    knowledge: _Knowledge,
    old: Evaluation | None,
    new: Evaluation | None,
    translate: Callable[[Evaluation, float], Carried],
) -> list[Carried]:
    """The points learnt so far, translated to the next phase: their metric scaled by new / old, one reference point
    (a design, or a shape) priced under the earlier and under the new fixed half; none without both."""
    metric = problem.metric
    if old is None or new is None or not old.metric(metric) > 0:
        return []
    knowledge.rescale(new.metric(metric) / old.metric(metric))
    return [translate(e, factor) for e, factor in knowledge.points.values()]


def _carried_design(problem: CodesignProblem, e: Evaluation, factor: float, *, anchor: Evaluation | None) -> Carried:
    """A design priced for an earlier shape, as the hardware phase for `anchor`'s shape would score it."""
    assert anchor is not None
    return Carried(
        hardware_params_of(problem, e.candidate.hardware),
        (e.metric(problem.metric) * factor,),
        (e.area_mm2 - problem.area_budget_mm2, anchor.perplexity - problem.perplexity_limit),
    )


def _carried_shape(problem: CodesignProblem, e: Evaluation, factor: float, *, anchor: Evaluation) -> Carried:
    """A shape priced on an earlier design, as the shape phase on `anchor`'s design would score it (its
    perplexity does not depend on the design)."""
    return Carried(
        shape_params_of(problem, e.candidate.arch),
        (e.metric(problem.metric) * factor, e.perplexity),
        (anchor.area_mm2 - problem.area_budget_mm2, e.perplexity - problem.perplexity_limit),
    )


def _seed_count(budget: int) -> int:
    """At least one: a later round's phase always re-prices the previous best (the hardware phase then always holds
    a design within the area budget), at most a quarter of its budget otherwise."""
    return max(1, min(SEEDS_MAX, budget // 4))


def _incumbent(problem: CodesignProblem, evals: Any) -> Evaluation | None:
    pool = [e for e in evals if problem.feasible(e)]
    return min(pool, key=lambda e: (e.metric(problem.metric), e.candidate.key)) if pool else None


def _top_designs(problem: CodesignProblem, evals: Sequence[Evaluation], n: int) -> list[HardwareParams]:
    """The `n` designs within the area budget with the lowest metric, distinct."""
    within = sorted((e for e in evals if e.area_mm2 <= problem.area_budget_mm2),
                    key=lambda e: (e.metric(problem.metric), e.candidate.key))  # fmt: skip
    out = {e.candidate.hardware.key: e.candidate.hardware for e in within}  # keeps the first (best) order
    return list(out.values())[:n]


def _top_shapes(
    problem: CodesignProblem, evals: Sequence[Evaluation], first: Architecture, n: int
) -> list[Architecture]:
    """`first` (the incumbent's shape), then the shapes within the perplexity limit with the lowest metric."""
    within = sorted((e for e in evals if e.perplexity <= problem.perplexity_limit),
                    key=lambda e: (e.metric(problem.metric), e.candidate.key))  # fmt: skip
    out = {first.key: first}
    for e in within:
        out.setdefault(e.candidate.arch.key, e.candidate.arch)
    return list(out.values())[:n]
