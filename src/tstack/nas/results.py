"""A search's results read back from its storage: every architecture once (its first complete trial), the
baseline, and the counts of trials, evaluations, cached lends, duplicates and failures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tstack.nas.pareto import Point, pareto_mask
from tstack.nas.search_config import DEFAULT_STUDY, SearchError
from tstack.nas.space import Architecture
from tstack.nas.storage import open_storage, quiet_optuna, redact

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


@dataclass(frozen=True, slots=True)
class Evaluated:
    """A candidate with its results, as stored in the study (the first complete trial of its key)."""

    arch: Architecture
    point: Point
    trial: int
    generation: int | None
    role: str


@dataclass(frozen=True, slots=True)
class StudyResults:
    """Everything a report needs, read back from storage."""

    study_name: str
    meta: Mapping[str, Any]
    evaluated: tuple[Evaluated, ...]
    n_trials: int
    n_evaluations: int  # objective calls that reached storage
    n_cached: int
    n_duplicates: int
    n_failed: int
    baseline: Evaluated | None
    baseline_perplexity: float | None  # a stand-alone trained baseline's, when the study records one

    def points(self) -> list[Point]:
        return [e.point for e in self.evaluated]

    def front(self) -> list[Evaluated]:
        """Pareto-optimal candidates in (perplexity, EDP), by perplexity."""
        if not self.evaluated:
            return []
        mask = pareto_mask([(e.point.perplexity, e.point.edp) for e in self.evaluated])
        chosen = [e for e, m in zip(self.evaluated, mask, strict=True) if m]
        return sorted(chosen, key=lambda e: (e.point.perplexity, e.point.edp, e.point.key))


def n_evaluations(trials: Sequence[FrozenTrial]) -> int:
    """Objective calls whose result reached storage (complete trials that were not lent another's values)."""
    from optuna.trial import TrialState

    return sum(1 for t in trials if t.state is TrialState.COMPLETE and "cached_from" not in t.user_attrs)


def results_of(study: optuna.Study) -> StudyResults:
    """A study's candidates and counts (each architecture once: its first complete trial)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    seen: set[str] = set()
    evaluated: list[Evaluated] = []
    baseline = None
    for t in trials:
        key = t.user_attrs.get("key")
        if t.state is not TrialState.COMPLETE or not key or key in seen or t.values is None:
            continue
        seen.add(key)
        point = Point(key, float(t.values[0]), float(t.user_attrs["latency_cycles"]), float(t.user_attrs["energy_pj"]))
        gen = t.user_attrs.get("generation")
        e = Evaluated(Architecture.from_key(key), point, t.number, None if gen is None else int(gen),
                      str(t.user_attrs.get("role", "sample")))  # fmt: skip
        evaluated.append(e)
    meta = dict(study.user_attrs.get("tstack", {}))
    if meta.get("space"):
        from tstack.nas.space import space_from_dict

        largest = space_from_dict(meta["space"]).largest().key
        baseline = next((e for e in evaluated if e.point.key == largest), None)
    bp = study.user_attrs.get("baseline_perplexity")
    return StudyResults(
        study_name=study.study_name,
        meta=meta,
        evaluated=tuple(evaluated),
        n_trials=len(trials),
        n_evaluations=n_evaluations(trials),
        n_cached=sum(1 for t in trials if t.state is TrialState.COMPLETE and "cached_from" in t.user_attrs),
        n_duplicates=sum(1 for t in trials if "duplicate_of" in t.user_attrs),
        n_failed=sum(1 for t in trials if t.state is TrialState.FAIL),
        baseline=baseline,
        baseline_perplexity=None if bp is None else float(bp),
    )


def load_results(storage: str | Path | optuna.storages.BaseStorage, study_name: str = DEFAULT_STUDY) -> StudyResults:
    """Read a study back (for `tstack nas report`); a clear error when there is none by that name."""
    import optuna

    store = open_storage(storage, create=False)
    with quiet_optuna():
        try:
            study = optuna.load_study(study_name=study_name, storage=store)
        except KeyError:
            names = optuna.get_all_study_names(store)
            hint = f"studies there: {', '.join(names)}" if names else "it holds no study; run `tstack nas search` first"
            raise SearchError(f"no study named {study_name!r} in {redact(storage)}; {hint}") from None
        return results_of(study)
