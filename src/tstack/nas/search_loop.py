"""The search loop: plans candidates, decides which worker evaluates each, prices and evaluates them, and recovers
trials left running by a dead worker. One candidate is one Optuna trial (see `tstack.nas.search`).

Crash safety and several workers. All state is in the storage, so a killed search resumes where it stopped:

- Evolution plans a generation by enqueueing its trials (`study.enqueue_trial`) only when the previous one has
  finished, and the plan is a deterministic function of the finished trials and the seed, so every worker (and a
  restarted one) derives the same population from storage. Two workers planning at once enqueue the same trials
  twice; the duplicates are dropped by the rule below.
- Evaluations never repeat. A worker evaluates a trial only if no lower-numbered trial with the same architecture
  key is waiting, running or complete: a complete one lends its values (the trial is "cached", no objective call),
  a waiting or running one makes this trial a pruned duplicate. Trial numbers are assigned in creation order by the
  storage, and before deciding a worker waits until every lower-numbered trial has published its key (enqueued
  trials carry it from creation; sampled ones set it right after `ask`), so two workers always agree which trial
  owns an architecture.
- A trial left running by a dead worker is detected (same host: its process is gone; any host: no heartbeat for
  `stale_after_s`; a worker killed between claiming a trial and naming itself: no owner after 10 s), failed and
  re-enqueued; the transition to FAIL is atomic in Optuna's storages, so exactly one worker re-enqueues it. An
  evaluation interrupted by the crash is redone once; one whose result reached storage never.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tstack.errors import TstackError
from tstack.nas.executors import Executor, Outcome
from tstack.nas.pareto import pareto_mask
from tstack.nas.pricing import PriceTable
from tstack.nas.results import n_evaluations
from tstack.nas.search_config import SearchConfig, SearchError, SearchProgress
from tstack.nas.space import Architecture, SearchSpace

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

_POLL_S = 0.05
_OWNERLESS_S = 10.0  # a running trial with no worker this long after it started is orphaned (see recover_stale)
_PLAN_ATTRS = ("generation", "role", "parent", "plan_size")  # what a re-enqueued trial keeps of its original


# -- who runs a trial, and is it still alive ---------------------------------------------------------------------
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class Worker:
    """The process that runs a trial, as recorded in the trial (so another process can tell whether it is gone)."""

    host: str = field(default_factory=socket.gethostname)
    boot: str = field(default_factory=_boot_id)
    pid: int = field(default_factory=os.getpid)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_attr(self) -> dict[str, Any]:
        return {"host": self.host, "boot": self.boot, "pid": self.pid, "id": self.id}

    def is_dead(self, attr: Mapping[str, Any]) -> bool | None:
        """True/False when `attr` names a process on this machine (since its last boot); None when it cannot tell."""
        if attr.get("host") != self.host or attr.get("boot") != self.boot:
            return None
        try:
            os.kill(int(attr["pid"]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, KeyError, TypeError, ValueError):
            return False
        return False


# -- the search loop ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Job:
    number: int
    arch: Architecture
    edp: float


class SearchLoop:
    """One worker's search over a study: plan, claim, evaluate and record trials until the plan is done."""

    def __init__(
        self,
        study: optuna.Study,
        space: SearchSpace,
        table: PriceTable,
        config: SearchConfig,
        executor: Executor,
        progress: Callable[[SearchProgress], None] | None,
    ) -> None:
        import optuna

        self.optuna = optuna
        self.study = study
        self.storage = study._storage  # the same object the study writes through (Optuna keeps no public handle)
        self.study_id = study._study_id
        self.space = space
        self.table = table
        self.config = config
        self.executor = executor
        self.progress = progress
        self.worker = Worker()
        self.choices = space.gene_choices()
        self.distributions: dict[str, optuna.distributions.BaseDistribution] = {
            name: optuna.distributions.CategoricalDistribution(list(values)) for name, values in self.choices.items()
        }
        self.inflight: dict[int, _Job] = {}
        self.failures_in_a_row = 0
        self._stop_heartbeat = threading.Event()
        self._lock = threading.Lock()

    # -- storage helpers --
    def trials(self) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def _trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def _enqueue(self, arch: Architecture, attrs: Mapping[str, Any]) -> None:
        genes = self.space.to_genes(arch)
        self.study.enqueue_trial(dict(genes), user_attrs={"key": arch.key, **attrs})

    def _fail_if_running(self, number: int) -> bool:
        """Atomically move a running trial to FAIL; False when another worker finished it first."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            self.storage.set_trial_state_values(self._trial_id(number), TrialState.FAIL)
        except UpdateFinishedTrialError:
            return False
        return True

    # -- liveness --
    def _heartbeat(self) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        while not self._stop_heartbeat.wait(self.config.heartbeat_s):
            with self._lock:
                numbers = list(self.inflight)
            for number in numbers:
                with contextlib.suppress(UpdateFinishedTrialError, KeyError, TstackError):  # the loop sees it too
                    self.storage.set_trial_user_attr(self._trial_id(number), "heartbeat", time.time())

    def recover_stale(self, trials: Sequence[FrozenTrial]) -> bool:
        """Fail and re-enqueue trials whose worker is gone; True when storage changed."""
        from optuna.trial import TrialState

        changed = False
        now = time.time()
        for t in trials:
            if t.state is not TrialState.RUNNING or t.number in self.inflight:
                continue
            owner = t.user_attrs.get("worker") or {}
            if owner.get("id") == self.worker.id:
                continue
            dead = self.worker.is_dead(owner) if owner else None
            started = t.datetime_start.timestamp() if t.datetime_start else now
            if not owner:
                # a live worker names itself right after `ask` (one journal record later): a trial that has no
                # owner after a few seconds belongs to a worker killed in between
                dead = now - started > min(_OWNERLESS_S, self.config.stale_after_s)
            elif dead is None:
                dead = now - float(t.user_attrs.get("heartbeat", started)) > self.config.stale_after_s
            if not dead or not self._fail_if_running(t.number):
                continue
            changed = True
            key = t.user_attrs.get("key")
            if key:  # its evaluation never reached storage: give it to the next worker
                attrs = {k: v for k, v in t.user_attrs.items() if k in _PLAN_ATTRS}
                self._enqueue(Architecture.from_key(key), {**attrs, "retry_of": t.number})
        return changed

    # -- who evaluates an architecture --
    def _owner_decision(self, number: int, key: str) -> tuple[str, FrozenTrial | None]:
        """("evaluate", None), ("cached", the complete trial) or ("duplicate", the live trial); see module doc."""
        from optuna.trial import TrialState

        while True:
            trials = self.trials()
            lower = [t for t in trials if t.number < number]
            unpublished = [t for t in lower if "key" not in t.user_attrs and not t.state.is_finished()]
            if unpublished:
                if not self.recover_stale(trials):
                    time.sleep(_POLL_S)
                continue
            same = [t for t in lower if t.user_attrs.get("key") == key]
            done = [t for t in same if t.state is TrialState.COMPLETE]
            if done:
                return "cached", done[0]
            live = [t for t in same if t.state in (TrialState.RUNNING, TrialState.WAITING)]
            if live:
                return "duplicate", live[0]
            return "evaluate", None

    # -- one trial --
    def start_one(self, from_queue_only: bool) -> bool:
        """Claim a trial and start its evaluation; False when there was nothing to claim."""
        from optuna.trial import TrialState

        trial = self.study.ask(self.distributions)
        trial.set_user_attr("worker", self.worker.to_attr())
        attrs = trial.user_attrs
        if from_queue_only and "key" not in attrs:
            # the queue emptied between our look and our ask, so Optuna made a fresh trial: drop it
            trial.set_user_attr("role", "empty")
            self.study.tell(trial, state=TrialState.PRUNED)
            return False
        arch = self.space.from_genes({name: int(v) for name, v in trial.params.items()})
        if "key" not in attrs:
            trial.set_user_attr("key", arch.key)
            trial.set_user_attr("role", "sample")
        cost = self.table.price(arch)
        decision, other = self._owner_decision(trial.number, arch.key)
        if decision == "duplicate":
            assert other is not None
            trial.set_user_attr("duplicate_of", other.number)
            self.study.tell(trial, state=TrialState.PRUNED)
            return True
        if decision == "cached":
            assert other is not None and other.values is not None
            for name in ("perplexity", "latency_cycles", "energy_pj", "edp"):
                trial.set_user_attr(name, other.user_attrs[name])
            trial.set_user_attr("cached_from", other.number)
            self.study.tell(trial, list(other.values))
            return True
        trial.set_user_attr("latency_cycles", cost.latency_cycles)
        trial.set_user_attr("energy_pj", cost.energy_pj)
        trial.set_user_attr("edp", cost.edp)
        with self._lock:
            self.inflight[trial.number] = _Job(trial.number, arch, cost.edp)
        try:
            self.executor.submit(trial.number, arch)
        except BaseException:
            # bad input aborts the search: hand the candidate back so a fixed rerun evaluates it
            with self._lock:
                self.inflight.pop(trial.number, None)
            if self._fail_if_running(trial.number):
                attrs = {k: v for k, v in trial.user_attrs.items() if k in _PLAN_ATTRS}
                self._enqueue(arch, {**attrs, "retry_of": trial.number})
            raise
        return True

    def finish(self, number: int, outcome: Outcome) -> None:
        from optuna.trial import TrialState

        with self._lock:
            job = self.inflight.pop(number)
        trial_id = self._trial_id(number)
        if isinstance(outcome, BaseException) or not math.isfinite(outcome):
            reason = f"{type(outcome).__name__}: {outcome}" if isinstance(outcome, BaseException) else "not finite"
            with contextlib.suppress(Exception):  # already finished by a worker that took it for dead
                self.storage.set_trial_user_attr(trial_id, "error", reason[:500])
            self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
            self.failures_in_a_row += 1
            if self.failures_in_a_row >= self.config.max_consecutive_failures:
                raise SearchError(
                    f"the objective failed {self.failures_in_a_row} times in a row (last: {job.arch.key}: "
                    f"{reason[:200]}); fix it and rerun the same command to resume"
                )
            return
        self.failures_in_a_row = 0
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            self.storage.set_trial_user_attr(trial_id, "perplexity", float(outcome))
            self.study.tell(number, [float(outcome), job.edp], skip_if_finished=True)
        except UpdateFinishedTrialError:
            # another worker took this trial for dead (no heartbeat for stale_after_s) and re-enqueued it; its
            # copy will be evaluated, so this result is dropped rather than stored twice
            pass

    # -- evolution: the plan lives in storage --
    def _results(self, trials: Sequence[FrozenTrial]) -> dict[str, tuple[float, float]]:
        from optuna.trial import TrialState

        out: dict[str, tuple[float, float]] = {}
        for t in trials:
            key = t.user_attrs.get("key")
            if t.state is TrialState.COMPLETE and key and key not in out and t.values is not None:
                out[key] = (float(t.values[0]), float(t.values[1]))
        return out

    def population(self, trials: Sequence[FrozenTrial], generation: int) -> list[str]:
        """The population evaluated in `generation`: the previous population's front plus this generation's
        evaluated children, re-derived from storage alone."""
        results = self._results(trials)
        by_gen: dict[int, list[str]] = {}
        for t in trials:
            g, key = t.user_attrs.get("generation"), t.user_attrs.get("key")
            if g is not None and key in results and key not in by_gen.setdefault(int(g), []):
                by_gen[int(g)].append(key)
        pop: list[str] = []
        for g in range(generation + 1):
            pop = self.retained(pop, results) if g else []
            pop += [k for k in by_gen.get(g, []) if k not in pop]
        return pop

    def retained(self, keys: Sequence[str], results: Mapping[str, tuple[float, float]]) -> list[str]:
        """The members of a population that survive into the next: its Pareto front, thinned by crowding distance
        (NSGA-II's) when the front would leave fewer than a quarter of the population to new children."""
        front = _front_keys(keys, results)
        cap = self.config.population - max(1, self.config.population // 4)
        if len(front) > cap:
            front = _least_crowded(front, results, cap)
        return sorted(front, key=lambda k: (*results[k], k))

    def plan_evolution(self, trials: Sequence[FrozenTrial]) -> str:
        """ "work" (trials are waiting), "wait" (the generation runs elsewhere) or "done"; enqueues the next
        generation when the current one has finished."""
        from optuna.trial import TrialState

        cfg = self.config
        tagged = [t for t in trials if "generation" in t.user_attrs]
        if any(t.state is TrialState.WAITING for t in tagged):
            return "work"
        if not tagged:
            return self._enqueue_generation(0, trials)
        gen = max(int(t.user_attrs["generation"]) for t in tagged)
        if _plan_cut_short(tagged, gen):
            # its planner died between two enqueues: finish its plan, re-derived from what it was derived from
            before = [t for t in trials if int(t.user_attrs.get("generation", -1)) != gen]
            present = {str(t.user_attrs.get("key")) for t in tagged if int(t.user_attrs["generation"]) == gen}
            if self._enqueue_generation(gen, before, present) == "work":
                return "work"
            # nothing of the re-derived plan is missing: the generation is complete as it stands
        elif not _generation_done(tagged, gen):
            return "wait"
        if gen + 1 >= cfg.iterations or self._budget_left(trials) <= 0:
            return "done"
        return self._enqueue_generation(gen + 1, trials)

    def _budget_left(self, trials: Sequence[FrozenTrial]) -> int:
        budget = self.config.budget
        return 1 << 62 if budget is None else budget - n_evaluations(trials)

    def _enqueue_generation(
        self, gen: int, trials: Sequence[FrozenTrial], present: frozenset[str] | set[str] = frozenset()
    ) -> str:
        """Plan generation `gen` from `trials` (those before it) and enqueue its architectures, less those already
        `present` in storage (a plan cut short by a crash is completed, not replaced)."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, gen])  # the plan depends on storage and seed only
        seen = {str(t.user_attrs["key"]) for t in trials if "key" in t.user_attrs}
        room = min(cfg.population, self._budget_left(trials))
        chosen: list[tuple[Architecture, dict[str, Any]]] = []
        if gen == 0:
            base = self.space.largest()
            if base.key not in seen:
                chosen.append((base, {"generation": 0, "role": "baseline"}))
            for _ in range(100 * cfg.population):
                if len(chosen) >= room:
                    break
                arch = self.space.sample(rng)
                if arch.key not in seen and all(arch.key != a.key for a, _ in chosen):
                    chosen.append((arch, {"generation": 0, "role": "random"}))
        else:
            results = self._results(trials)
            retained = self.retained(self.population(trials, gen - 1), results)
            want = min(room, cfg.population - len(retained))
            for _ in range(200 * want):
                if len(chosen) >= want or not retained:
                    break
                parent = retained[int(rng.integers(len(retained)))]
                child = self.space.mutate(Architecture.from_key(parent), rng, cfg.mutation_prob)
                if child.key not in seen and all(child.key != a.key for a, _ in chosen):
                    chosen.append((child, {"generation": gen, "role": "child", "parent": parent}))
        if not chosen:  # the space is exhausted around the front: nothing new to evaluate
            return "done"
        missing = [(arch, attrs) for arch, attrs in chosen if arch.key not in present]
        for arch, attrs in missing:
            # plan_size: another worker may see the plan half enqueued; it must not take that half for the whole
            self._enqueue(arch, {**attrs, "plan_size": len(chosen)})
        return "work" if missing else "done"

    def plan_sampler(self, trials: Sequence[FrozenTrial]) -> str:
        from optuna.trial import TrialState

        budget = self.config.budget or 0
        if not trials:
            self._enqueue(self.space.largest(), {"role": "baseline"})
            return "work"
        live = [
            t
            for t in trials
            if t.state in (TrialState.RUNNING, TrialState.WAITING)
            or (t.state is TrialState.COMPLETE and "cached_from" not in t.user_attrs)
        ]
        if len(live) >= budget or len(trials) >= 10 * budget + 100:  # the second: a tiny space gives only repeats
            return "done"
        return "work"

    def report(self, trials: Sequence[FrozenTrial]) -> None:
        if self.progress is None:
            return
        results = self._results(trials)
        front = _front_keys(list(results), results)
        evaluations = n_evaluations(trials)
        if self.config.algorithm == "evolution":
            gens = [int(t.user_attrs["generation"]) for t in trials if "generation" in t.user_attrs]
            done_gens = 0
            if gens:
                current = max(gens)
                tagged = [t for t in trials if "generation" in t.user_attrs]
                done_gens = current + 1 if _generation_done(tagged, current) else current
            self.progress(SearchProgress(done_gens, self.config.iterations, "generation", evaluations, len(front)))
        else:
            total = self.config.budget or 0
            self.progress(SearchProgress(min(evaluations, total), total, "evaluation", evaluations, len(front)))

    def run(self) -> None:
        beat = threading.Thread(target=self._heartbeat, name="tstack-nas-heartbeat", daemon=True)
        beat.start()
        try:
            self._loop()
        finally:
            self._stop_heartbeat.set()
            beat.join(timeout=5)

    def _loop(self) -> None:
        evolution = self.config.algorithm == "evolution"
        while True:
            trials = self.trials()
            if self.recover_stale(trials):
                trials = self.trials()
            status = "busy"
            if len(self.inflight) < self.executor.capacity:
                status = self.plan_evolution(trials) if evolution else self.plan_sampler(trials)
                if status == "work":
                    self.start_one(from_queue_only=evolution)
                    if self.executor.capacity > 1:
                        continue  # fill every free slot before waiting
            for number, outcome in self.executor.wait(_POLL_S if self.inflight else 0.0):
                self.finish(number, outcome)
            self.report(self.trials())
            if status == "done" and not self.inflight:
                return
            if status == "wait" and not self.inflight:
                time.sleep(_POLL_S)


def _generation_done(tagged: Sequence[FrozenTrial], gen: int) -> bool:
    """Every planned architecture of generation `gen` is in storage and every trial of it has finished."""
    current = [t for t in tagged if int(t.user_attrs["generation"]) == gen]
    planned = max(int(t.user_attrs.get("plan_size", 0)) for t in current)
    keys = {t.user_attrs.get("key") for t in current}
    return len(keys) >= planned and all(t.state.is_finished() for t in tagged)


def _plan_cut_short(tagged: Sequence[FrozenTrial], gen: int) -> bool:
    """Generation `gen` holds fewer architectures than planned and none of its trials waits or runs: its planner
    was killed between two enqueues (a live planner enqueues its whole plan before any of it is evaluated; should
    one be racing this check after all, the architectures enqueued twice are pruned as duplicates)."""
    current = [t for t in tagged if int(t.user_attrs["generation"]) == gen]
    planned = max(int(t.user_attrs.get("plan_size", 0)) for t in current)
    keys = {t.user_attrs.get("key") for t in current}
    return len(keys) < planned and all(t.state.is_finished() for t in tagged)


def _front_keys(keys: Sequence[str], results: Mapping[str, tuple[float, float]]) -> list[str]:
    keys = [k for k in keys if k in results]
    if not keys:
        return []
    mask = pareto_mask([results[k] for k in keys])
    return [k for k, m in zip(keys, mask, strict=True) if m]


def _least_crowded(keys: Sequence[str], results: Mapping[str, tuple[float, float]], keep: int) -> list[str]:
    """The `keep` front members with the largest crowding distance (the two extremes always stay)."""
    order = sorted(keys, key=lambda k: (*results[k], k))
    pts = np.array([results[k] for k in order], dtype=np.float64)
    span = np.maximum(pts.max(axis=0) - pts.min(axis=0), 1e-300)
    crowd = np.full(len(order), np.inf)
    if len(order) > 2:
        crowd[1:-1] = (np.abs(pts[2:] - pts[:-2]) / span).sum(axis=1)
    ranked = sorted(range(len(order)), key=lambda i: (-crowd[i], order[i]))
    return [order[i] for i in sorted(ranked[:keep])]
