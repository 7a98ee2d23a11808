"""One phase of a co-design search: an Optuna study that asks proposals in batches, evaluates them and tells them.

A phase searches the hardware for one fixed shape (`Phase.HARDWARE`, minimizing the metric under the area budget),
the shapes on one fixed design (`Phase.SHAPE`, minimizing (metric, perplexity) under the perplexity limit), or both
together (`Phase.JOINT`, minimizing (metric, area, perplexity) under both constraints). The strategies of
`tstack.codesign.search` are sequences of phases.

Determinism and crash safety (the search module's docstring has the whole story): proposal s of a phase (its
"slot") is asked from a sampler seeded by (seed, slot), after every proposal of the earlier batches is told, so a
proposal depends only on the seed and the finished history. A killed phase, rerun, fails the trials its dead run
left running and re-enqueues their parameters in the same slots.

A phase may start from `seeds`: parameter sets asked, in this order, as its first proposals (slot i takes seed i),
instead of the sampler's own first proposals; each is enqueued only when its batch is claimed, so that the queue
never holds a later batch's trial. It may reuse `prior`: candidates an earlier phase evaluated, whose results a
repeat proposal takes without an evaluation, as a repeat within the phase does (``cached_from``). And it may be
given `carried` trials: an earlier phase's parameters with objective values and constraints translated to this
phase, added to the study as finished trials (marked ``carried``, no slot) so that its sampler starts from what
that phase learnt; they are neither proposals nor evaluations, and are left out of every count and result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tstack.codesign.evaluate import Candidate, CodesignProblem, Evaluation
from tstack.codesign.executors import Executor, Outcome
from tstack.codesign.space import HardwareParams
from tstack.errors import TstackError
from tstack.nas.space import Architecture

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

_RESULT_ATTRS = ("latency_cycles", "energy_pj", "area_mm2", "perplexity")
_CONSTRAINTS = ("area_over_budget_mm2", "perplexity_over_limit")  # Optuna constraint names (feasible at <= 0)


class Sampler(StrEnum):
    TPE = "tpe"
    RANDOM = "random"


class Phase(StrEnum):
    """What a phase searches."""

    HARDWARE = "hardware"  # the hardware for one fixed shape
    SHAPE = "shape"  # model shapes on one fixed design
    JOINT = "joint"  # both


class CodesignSearchError(TstackError):
    """An evaluation raised: the search stops, and the same command resumes it."""


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    """One phase: its kind, budget of proposals, Optuna distributions, and how parameters become a candidate and
    an evaluation becomes the study's objective values."""

    phase: Phase
    budget: int
    distributions: Mapping[str, Any]
    decode: Callable[[Mapping[str, Any]], Candidate]
    values: Callable[[Evaluation], list[float]]
    seeds: tuple[Mapping[str, Any], ...] = ()
    prior: Mapping[str, Evaluation] = field(default_factory=dict)
    carried: tuple[Carried, ...] = ()


@dataclass(frozen=True, slots=True)
class Carried:
    """A finished trial of an earlier phase, translated to this one: its parameters, objective values and
    (area, perplexity) constraint violations as this phase would have scored it."""

    params: Mapping[str, Any]
    values: tuple[float, ...]
    violations: tuple[float, float]


def make_sampler(sampler: Sampler, seed: int, slot: int) -> optuna.samplers.BaseSampler:
    """The sampler that asks proposal `slot` of a search seeded with `seed`."""
    import numpy as np
    import optuna

    slot_seed = int(np.random.SeedSequence([seed, slot]).generate_state(1)[0])
    if sampler is Sampler.RANDOM:
        return optuna.samplers.RandomSampler(seed=slot_seed)
    return optuna.samplers.TPESampler(seed=slot_seed)  # constraints: each trial's set_constraint (optuna >= 5)


# -- parameters <-> candidates --------------------------------------------------------------------------------------
def hardware_distributions(problem: CodesignProblem) -> dict[str, Any]:
    import optuna

    return {
        f"hw.{name}": optuna.distributions.CategoricalDistribution(list(values))
        for name, values in problem.hardware.choices
        if len(values) > 1
    }


def shape_distributions(problem: CodesignProblem) -> dict[str, Any]:
    import optuna

    return {
        f"shape.{name}": optuna.distributions.CategoricalDistribution(list(values))
        for name, values in problem.shapes.gene_choices().items()
        if len(values) > 1
    }


def decode_hardware(problem: CodesignProblem, params: Mapping[str, Any]) -> HardwareParams:
    genes = {k[3:]: v for k, v in params.items() if k.startswith("hw.")}
    return problem.hardware.params(genes)


def decode_shape(problem: CodesignProblem, params: Mapping[str, Any]) -> Architecture:
    genes = {name: int(values[0]) for name, values in problem.shapes.gene_choices().items()}
    genes.update({k[6:]: int(v) for k, v in params.items() if k.startswith("shape.")})
    return problem.shapes.from_genes(genes)


def hardware_params_of(problem: CodesignProblem, hw: HardwareParams) -> dict[str, Any]:
    """The Optuna parameters that decode to `hw` (the inverse of `decode_hardware`)."""
    values = hw.to_dict()
    return {key: values[key[3:]] for key in hardware_distributions(problem)}


def shape_params_of(problem: CodesignProblem, arch: Architecture) -> dict[str, Any]:
    """The Optuna parameters that decode to `arch` (layers beyond its depth copy its last one)."""
    genes = problem.shapes.to_genes(arch)
    return {key: genes[key[6:]] for key in shape_distributions(problem)}


def phase_spec(
    problem: CodesignProblem,
    phase: Phase,
    budget: int,
    *,
    shape: Architecture | None = None,
    hardware: HardwareParams | None = None,
    seeds: Sequence[Mapping[str, Any]] = (),
    prior: Mapping[str, Evaluation] | None = None,
    carried: Sequence[Carried] = (),
) -> PhaseSpec:
    """A phase of `phase` kind: the hardware for `shape`, the shapes on `hardware`, or both (JOINT)."""
    metric = problem.metric
    extra: dict[str, Any] = {"seeds": tuple(seeds), "prior": dict(prior or {}), "carried": tuple(carried)}
    if phase is Phase.HARDWARE:
        assert shape is not None
        fixed_shape = shape
        return PhaseSpec(phase, budget, hardware_distributions(problem),
                         lambda p: Candidate(decode_hardware(problem, p), fixed_shape),
                         lambda e: [e.metric(metric)], **extra)  # fmt: skip
    if phase is Phase.SHAPE:
        assert hardware is not None
        fixed_hw = hardware
        return PhaseSpec(phase, budget, shape_distributions(problem),
                         lambda p: Candidate(fixed_hw, decode_shape(problem, p)),
                         lambda e: [e.metric(metric), e.perplexity], **extra)  # fmt: skip
    return PhaseSpec(phase, budget, {**hardware_distributions(problem), **shape_distributions(problem)},
                     lambda p: Candidate(decode_hardware(problem, p), decode_shape(problem, p)),
                     lambda e: [e.metric(metric), e.area_mm2, e.perplexity], **extra)  # fmt: skip


# -- running a phase ------------------------------------------------------------------------------------------------
def run_phase(
    study: optuna.Study,
    spec: PhaseSpec,
    problem: CodesignProblem,
    make: Callable[[int], optuna.samplers.BaseSampler],
    batch_size: int,
    executor: Executor,
) -> None:
    """Ask, evaluate and tell every slot of `spec` not yet complete in `study`, `batch_size` at a time; `make(slot)`
    is the slot's sampler."""
    from optuna.trial import TrialState

    _add_carried(study, spec)
    _recover(study, spec)
    while True:
        trials = study.get_trials(deepcopy=False)
        done = {int(t.user_attrs["slot"]) for t in trials if t.state is TrialState.COMPLETE and "slot" in t.user_attrs}
        todo = [s for s in range(spec.budget) if s not in done]
        if not todo:
            return
        first = todo[0] - todo[0] % batch_size
        batch = [s for s in todo if s < first + batch_size]
        claimed = _claim(study, spec, make, batch, trials)
        _evaluate_and_tell(study, spec, problem, executor, claimed)


def _add_carried(study: optuna.Study, spec: PhaseSpec) -> None:
    """Add the carried trials the study does not hold yet (all of them, unless a killed run added some)."""
    import optuna
    from optuna.trial import TrialState

    held = {int(t.user_attrs["carried"]) for t in study.get_trials(deepcopy=False) if "carried" in t.user_attrs}
    for i, c in enumerate(spec.carried):
        if i in held:
            continue
        constraints = {f"constraints:{name}": float(v) for name, v in zip(_CONSTRAINTS, c.violations, strict=True)}
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE, params=dict(c.params), distributions=dict(spec.distributions),
            values=list(c.values), user_attrs={"carried": i}, system_attrs=constraints,
        ))  # fmt: skip


def _recover(study: optuna.Study, spec: PhaseSpec) -> None:
    """Fail the trials a dead run left running and hand their parameters back to their slots (module docstring)."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        if "slot" in t.user_attrs and set(t.params) == set(spec.distributions):
            study.enqueue_trial(dict(t.params), user_attrs={"slot": t.user_attrs["slot"], "retry_of": t.number})


def _claim(
    study: optuna.Study,
    spec: PhaseSpec,
    make: Callable[[int], optuna.samplers.BaseSampler],
    batch: list[int],
    trials: Sequence[FrozenTrial],
) -> list[tuple[optuna.Trial, int, Candidate]]:
    """(trial, slot, candidate) of every slot of the batch: enqueued trials first, then seeds, then fresh asks."""
    from optuna.trial import TrialState

    waiting = [t for t in trials if t.state is TrialState.WAITING and int(t.user_attrs.get("slot", -1)) in batch]
    free = [s for s in batch if s not in {int(t.user_attrs["slot"]) for t in waiting}]
    claimed: list[tuple[optuna.Trial, int, Candidate]] = []
    for _ in waiting:
        trial = study.ask(dict(spec.distributions))  # pops the queue: an enqueued trial keeps its slot attr
        claimed.append((trial, int(trial.user_attrs["slot"]), spec.decode(trial.params)))
    for slot in free:
        if slot < len(spec.seeds):  # enqueued now, asked at once: the queue holds only this batch's trials
            study.enqueue_trial(dict(spec.seeds[slot]), user_attrs={"slot": slot, "seeded": True})
            trial = study.ask(dict(spec.distributions))
        else:
            study.sampler = make(slot)
            trial = study.ask(dict(spec.distributions))
            trial.set_user_attr("slot", slot)
        claimed.append((trial, slot, spec.decode(trial.params)))
    return sorted(claimed, key=lambda c: c[1])


def _evaluate_and_tell(
    study: optuna.Study,
    spec: PhaseSpec,
    problem: CodesignProblem,
    executor: Executor,
    claimed: list[tuple[optuna.Trial, int, Candidate]],
) -> None:
    from optuna.trial import TrialState

    finished = {
        str(t.user_attrs["key"]): t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "key" in t.user_attrs and "cached_from" not in t.user_attrs
    }
    known = finished.keys() | spec.prior.keys()
    fresh = list({c.key: c for _, _, c in claimed if c.key not in known}.values())  # each candidate once
    outcomes: dict[str, Outcome] = dict(zip([c.key for c in fresh], executor.map(fresh), strict=True))
    for trial, _slot, candidate in claimed:
        trial.set_user_attr("key", candidate.key)
        trial.set_user_attr("hardware", candidate.hardware.to_dict())
        source = finished.get(candidate.key)
        if source is not None:  # a repeat proposal: the finished trial's values, no evaluation
            for name in (*_RESULT_ATTRS, "violations"):
                trial.set_user_attr(name, source.user_attrs[name])
            trial.set_user_attr("cached_from", source.number)
            _constrain(trial, source.user_attrs["violations"])
            assert source.values is not None
            study.tell(trial, list(source.values))
            continue
        earlier = spec.prior.get(candidate.key)
        if earlier is not None:  # evaluated by an earlier phase: its results, no evaluation
            trial.set_user_attr("cached_from", "earlier phase")
            _tell_evaluation(study, trial, spec, problem, earlier)
            continue
        outcome = outcomes[candidate.key]
        if isinstance(outcome, BaseException):
            trial.set_user_attr("error", f"{type(outcome).__name__}: {outcome}"[:500])
            study.tell(trial, state=TrialState.FAIL)
            reason = f"{type(outcome).__name__}: {outcome}"[:300]
            raise CodesignSearchError(f"evaluating {candidate.key} failed ({reason}); fix it and rerun to resume")
        _tell_evaluation(study, trial, spec, problem, outcome)


def _tell_evaluation(
    study: optuna.Study, trial: optuna.Trial, spec: PhaseSpec, problem: CodesignProblem, e: Evaluation
) -> None:
    for name in _RESULT_ATTRS:
        trial.set_user_attr(name, float(getattr(e, name)))
    violations = list(problem.violations(e))
    trial.set_user_attr("violations", violations)
    _constrain(trial, violations)
    study.tell(trial, spec.values(e))


def _constrain(trial: optuna.Trial, violations: Sequence[float]) -> None:
    """The area and perplexity constraints as Optuna's (feasible at <= 0), read by the samplers."""
    for name, value in zip(_CONSTRAINTS, violations, strict=True):
        trial.set_constraint(name, float(value))


def stored_evaluations(problem: CodesignProblem, study: optuna.Study) -> list[Evaluation]:
    """Each distinct candidate's stored results in `study`, in trial order."""
    from optuna.trial import TrialState

    out: dict[str, Evaluation] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = str(t.user_attrs.get("key"))
        if key in out or "carried" in t.user_attrs:
            continue
        a = t.user_attrs
        cand = Candidate(problem.hardware.params(a["hardware"]), Architecture.from_key(key.partition("|")[2]))
        out[key] = Evaluation(cand, float(a["latency_cycles"]), float(a["energy_pj"]), float(a["area_mm2"]),
                              float(a["perplexity"]))  # fmt: skip
    return list(out.values())


def best_hardware(problem: CodesignProblem, evals: Sequence[Evaluation]) -> HardwareParams:
    """The design with the lowest metric among `evals` within the area budget (ties: by key)."""
    within = [e for e in evals if e.area_mm2 <= problem.area_budget_mm2]
    if not within:
        smallest = min(evals, key=lambda e: e.area_mm2)
        raise CodesignSearchError(
            f"no design the hardware phase tried meets the area budget of {problem.area_budget_mm2:g} mm^2 (the "
            f"smallest took {smallest.area_mm2:.3g} mm^2); raise --area-budget or --evaluations"
        )
    return min(within, key=lambda e: (e.metric(problem.metric), e.candidate.key)).candidate.hardware
